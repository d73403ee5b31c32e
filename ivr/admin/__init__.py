"""The ops console: the admin HTTP API of ``ivr serve`` (:mod:`ivr.admin.api`, its handlers in
:mod:`ivr.admin.records_api` and :mod:`ivr.admin.flows_api`), who may use it and the headers
every answer carries (:mod:`ivr.admin.guard`), what it reads from the running server
(:mod:`ivr.admin.console`), its listener (:mod:`ivr.admin.server`) and the web dashboard's
static files (``static/``)."""
