"""Reporting over stored call records: KPIs (:mod:`ivr.reporting.kpi`) and the dashboard's
queries (:mod:`ivr.reporting.queries`)."""
