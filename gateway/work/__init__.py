"""The work side: what a worker process runs (AI turns, deliveries, RQ jobs and the chores that keep them going).

It takes its work from Redis, never from a gateway process: it never imports the request side (gateway.web), nor
the request side it. Both build on the shared core at gateway/'s top level.
"""
