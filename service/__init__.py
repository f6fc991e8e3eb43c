"""The command line and `movierec up`: process supervision, embedded servers, granian.

The top layer: it may import every other package, and none imports it.
"""
