"""What the app sends to people on its own: scheduled email reports (and, later, alerts).

schedule.py says when a report is due (pure: local wall-clock times of the site's zone, DST
included); the `reports` job (ops/jobs.py) sends what is due through the mail outbox, once per
recipient and period.
"""
