"""Offline evaluation: protocols, baselines, metrics, tuning and the reports."""
