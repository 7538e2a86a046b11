"""Offline evaluation: ranking metrics and a position-biased click model (pure Python).

The simulator that drives a running server with this click model is ``es_harness.click_simulator``:
it talks gRPC, which the library stays free of.
"""
