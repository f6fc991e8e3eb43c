"""How the process spends threads, memory and garbage-collector passes: shared by every stage."""
