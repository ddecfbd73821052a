"""The RQ jobs' old home, kept importable because RQ finds a job's function by the dotted name it was queued under.

Jobs queued before the move to gateway.work.jobs (their retries included) name `gateway.jobs.notify_hook` and
`gateway.jobs.notify`; this alias lets an upgraded worker run them. New jobs are queued under gateway.work.jobs
(gateway.queue.JOBS). Remove it once no queue can hold a job from before the move.
"""

from gateway.work.jobs import notify, notify_hook

__all__ = ["notify", "notify_hook"]
