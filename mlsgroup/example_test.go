package mlsgroup_test

import (
	"crypto/rand"
	"fmt"
	"log"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// Two nodes, each with its own storage: Alice creates a group and adds
// Bob, Bob joins with the keys his storage kept, and they talk. A real
// node persists each returned state before it sends what came with it.
func Example() {
	aliceStore, bobStore := new(mlsgroup.MemoryStorage), new(mlsgroup.MemoryStorage)
	aliceCfg := mlsgroup.Config{Storage: aliceStore, Rand: rand.Reader, Now: time.Now}
	bobCfg := mlsgroup.Config{Storage: bobStore, Rand: rand.Reader, Now: time.Now}
	cs := mlsgroup.DefaultCipherSuite

	aliceKey, err := mlsgroup.GenerateSigner(cs, rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	bobKey, err := mlsgroup.GenerateSigner(cs, rand.Reader)
	if err != nil {
		log.Fatal(err)
	}

	// Bob publishes a KeyPackage; its private keys stay in his storage.
	kp, err := mlsgroup.NewKeyPackage(bobStore, []byte("bob"), bobKey, mlsgroup.KeyPackageOptions{}, rand.Reader, time.Now())
	if err != nil {
		log.Fatal(err)
	}

	alice, err := mlsgroup.CreateGroup(aliceCfg, []byte("an example group"), []byte("alice"), aliceKey, mlsgroup.GroupOptions{})
	if err != nil {
		log.Fatal(err)
	}
	sent, err := alice.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{mlsgroup.AddProposal(kp)}})
	if err != nil {
		log.Fatal(err)
	}
	// Persist sent.Group, then publish sent.Message; once the delivery
	// service has taken the commit, merge it. Only the merge hands out
	// the Welcome: persist merged.Group, then send it to Bob.
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		log.Fatal(err)
	}
	alice = merged.Group

	joined, err := mlsgroup.Join(bobCfg, merged.Welcome, bobKey, mlsgroup.JoinOptions{})
	if err != nil {
		log.Fatal(err)
	}
	bobStore.ConsumeKeyPackage(joined.ConsumedKeyPackage) // in the batch that saves the group
	bob := joined.Group

	out, err := alice.Encrypt([]byte("hello, bob"), nil)
	if err != nil {
		log.Fatal(err)
	}
	alice = out.Group
	in, err := bob.Process(out.Message)
	if err != nil {
		log.Fatal(err)
	}
	bob = in.Group
	fmt.Printf("epoch %d, %d members: %s\n", bob.Epoch(), len(bob.Members()), in.Plaintext)
	_ = alice
	// Output: epoch 1, 2 members: hello, bob
}
