"""Stops a run whose data ExampleValidator found anomalies in, before any Trainer sees it."""

from components.data_gate.component import DataAnomaliesError, DataGate

__all__ = ['DataAnomaliesError', 'DataGate']
