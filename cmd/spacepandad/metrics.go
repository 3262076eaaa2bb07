package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spacepanda/spacepanda/node"
)

// metricsHandler serves the node's gauges and the Go runtime's, read at
// scrape time from the node's public API, so nothing in the node knows
// about Prometheus. A registry of its own keeps libp2p's global metrics
// (which name peers) out of the endpoint.
func metricsHandler(n *node.Node) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "spacepanda", Name: "peers", Help: "Connected libp2p peers.",
		}, func() float64 { return float64(len(n.Peers())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "spacepanda", Name: "channels", Help: "Channels this node is a member of.",
		}, func() float64 { return float64(len(n.Channels())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "spacepanda", Name: "pending_invitations", Help: "Invitations waiting for accept or decline.",
		}, func() float64 { return float64(len(n.Invitations())) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "spacepanda", Name: "events_total", Help: "Events the node has emitted (its event cursor).",
		}, func() float64 { return float64(n.LastEvent()) }),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
