"""Headless plots of the clusters and lists, drawn beside a run in a process of their own."""
