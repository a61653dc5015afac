"""Operations: what an operator's tools ask the running app — liveness and readiness
(health.py), Prometheus metrics (metrics.py) — served by views.py.

Nothing here reads or returns tracked data or settings: the answers are safe to give a load
balancer, an orchestrator or a metrics scraper.
"""
