package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	agentsConnected prometheus.Gauge
	messages        *prometheus.CounterVec
	healthMessages  prometheus.Counter // messages{type="health"}, looked up once
	healthWrites    prometheus.Counter
	rejected        *prometheus.CounterVec
	samplesStored   prometheus.Counter
	samplesDup      prometheus.Counter
	spoolDropped    prometheus.Counter
	enrollments     *prometheus.CounterVec
	logins          *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		agentsConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskside_agents_connected", Help: "Agent streams open on this relay.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskside_agent_messages_total", Help: "Messages received from agents, by type.",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskside_agent_reports_rejected_total", Help: "Agent reports refused, by reason.",
		}, []string{"reason"}),
		samplesStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskside_health_samples_stored_total", Help: "Health samples stored.",
		}),
		samplesDup: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskside_health_samples_duplicate_total", Help: "Health samples received again and ignored.",
		}),
		spoolDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskside_agent_spool_dropped_total", Help: "Health samples agents report having dropped from a full spool.",
		}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskside_enrollments_total", Help: "Enrollment attempts, by result.",
		}, []string{"result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskside_console_logins_total", Help: "Console sign-in attempts, by result.",
		}, []string{"result"}),
	}
	m.healthMessages = m.messages.WithLabelValues("health")
	m.healthWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deskside_health_write_transactions_total",
		Help: "Store transactions that wrote agents' health reports (several reports share one where the store allows it).",
	})
	reg.MustRegister(m.agentsConnected, m.messages, m.rejected, m.samplesStored, m.samplesDup, m.healthWrites,
		m.spoolDropped, m.enrollments, m.logins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
