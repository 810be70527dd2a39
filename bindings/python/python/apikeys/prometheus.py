"""Verification metrics for ``prometheus_client`` (docs/metrics.md).

The keyring counts the final answer of every authentication, by key kind and
outcome, and its latency (docs/design.md §12): build it with
``Keyring(metrics=True)``, then register a collector that reads those counts
whenever Prometheus scrapes::

    from prometheus_client import REGISTRY
    from apikeys.prometheus import AuthCollector

    keyring = apikeys.Keyring(metrics=True)
    REGISTRY.register(AuthCollector(keyring))

It exposes ``apikeys_authentications_total{kind, outcome}`` and the histogram
``apikeys_authentication_duration_seconds{kind, outcome}``: the same names,
labels and buckets as the Rust ``metrics`` facade and Node's ``prom-client``
collector. This module only converts; the core decides every name and count.
Registering a second collector for them in one registry is refused by
``prometheus_client`` (``ValueError``: duplicated timeseries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from . import Keyring

__all__ = ["AuthCollector", "COUNTER", "HISTOGRAM"]

#: The counter's name as exposed (``prometheus_client`` adds ``_total``).
COUNTER = "apikeys_authentications"
#: The latency histogram's name.
HISTOGRAM = "apikeys_authentication_duration_seconds"
_LABELS = ["kind", "outcome"]
# How prometheus_client itself writes a bucket's bound (`1e-06`, `0.0001`, `1.0`).
_le: Callable[[float], str] = floatToGoString
_COUNTER_HELP = "Final answers of authentications, by key kind and outcome."
_HISTOGRAM_HELP = "Time to answer an authentication, by key kind and outcome."


class AuthCollector(Collector):
    """A ``prometheus_client`` collector of one keyring's verification metrics."""

    def __init__(self, keyring: Keyring) -> None:
        if not isinstance(keyring, Keyring):
            raise TypeError(f"keyring must be an apikeys.Keyring, not {type(keyring).__name__}")
        if keyring.metrics() is None:
            raise ValueError(
                "this keyring counts no metrics: build it with Keyring(metrics=True)"
            )
        self._keyring = keyring

    def describe(self) -> Iterator[Metric]:
        """The families this collector yields (for duplicate checks), without reading counts."""
        yield CounterMetricFamily(COUNTER, _COUNTER_HELP, labels=_LABELS)
        yield HistogramMetricFamily(HISTOGRAM, _HISTOGRAM_HELP, labels=_LABELS)

    def collect(self) -> Iterator[Metric]:
        """The counts as they are now."""
        counter = CounterMetricFamily(COUNTER, _COUNTER_HELP, labels=_LABELS)
        histogram = HistogramMetricFamily(HISTOGRAM, _HISTOGRAM_HELP, labels=_LABELS)
        snapshot = self._keyring.metrics()
        if snapshot is not None:
            bounds, series = snapshot
            les = [_le(b) for b in bounds] + ["+Inf"]
            for kind, outcome, count, sum_seconds, buckets in series:
                counter.add_metric([kind, outcome], count)
                histogram.add_metric(
                    [kind, outcome],
                    buckets=list(zip(les, [float(b) for b in buckets])),
                    sum_value=sum_seconds,
                )
        yield counter
        yield histogram
