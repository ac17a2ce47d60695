"""Budgets and the compute prices they are spent at: monthly amounts per team (or project),
alert thresholds that notify once per month each, and an optional hard cap that refuses calls
with 402 until the next month or a raised budget.

services (writes), selectors (reads), notifications (sending one alert), tasks (queueing and
sending alerts), api + api_urls (/v1), views + urls + forms (pages). The models live in
billing.models."""
