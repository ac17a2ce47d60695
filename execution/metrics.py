"""The execution layer's gauges read when /metrics is scraped, added to
`marketplace.core.metrics.collectors` in ExecutionConfig.ready()."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from .runner_service import RunnerClient, RunnerUnavailable


class RunnerPoolCollector:
    """The warm pool of this host's runner service, from its /health."""

    def collect(self):
        up = GaugeMetricFamily(
            "marketplace_runner_up", "Whether this host's model runner answered the scrape."
        )
        try:
            stats = RunnerClient().health()
        except RunnerUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, key, text in (
            ("processes", "processes", "Warm model processes in the runner's pool."),
            ("busy_processes", "busy", "Warm model processes running a call now."),
            ("max_processes", "max_processes", "The most processes the pool may hold."),
        ):
            if isinstance(stats.get(key), int | float):
                yield GaugeMetricFamily(f"marketplace_runner_pool_{name}", text, value=stats[key])
