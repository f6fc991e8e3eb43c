"""How a process stops waiting on a dependency that does not answer: deadlines enforced by the
client, connections abandoned past them, and circuit breakers that fail fast meanwhile.

A frozen server (SIGSTOP, a stop-the-world pause, packets dropped without a reset) keeps its
socket open, so the kernel accepts and acknowledges while nothing answers: only the client can
give up, and a statement cannot be cancelled through a server that does not run.
"""
