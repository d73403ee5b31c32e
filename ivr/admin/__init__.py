"""The ops console: the admin HTTP API of ``ivr serve`` (:mod:`ivr.admin.api`), what it reads
from the running server (:mod:`ivr.admin.console`), its listener (:mod:`ivr.admin.server`) and
the web dashboard's static files (``static/``)."""
