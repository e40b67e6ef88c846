"""The dispatcher: the queue, placement on nodes, plans, state transitions, and the process
or thread it runs in. Below the use cases (services), above the executors."""
