// Package monitoring holds no code: its directory ships svcdisc's Grafana
// dashboard (dashboard.json) and Prometheus alerts (rules.yaml,
// prometheusrule.yaml, with promtool unit tests in rules_test.yaml), and its
// test checks them against the metrics svcdisc really exports.
package monitoring
