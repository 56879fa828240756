"""The worker: scheduled jobs that run exactly once per time slot, however many hosts run it.

``collabry worker run-due`` (a oneshot started every minute by a systemd timer) computes the due
slots of each job in UTC (``schedule``), claims each slot in the ``job_runs`` ledger by a unique
insert (``ledger``), runs the job body (``jobs/<job>.py``) and records the outcome, duration and
item counts. Job bodies are idempotent per item, so a slot retried after a crash finishes the
items that were left and repeats none.
"""
