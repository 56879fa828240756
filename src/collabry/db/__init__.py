"""Database layer: every database call of the product goes through a module here.

- ``client``: the async client, ids and times as stored;
- one repository module per collection or aggregate (``users``, ``sessions``, ``boards``,
  ``board_content``, ``notebooks``, ``sources``, ``chunks``, ``index_state``, ``ai_sessions``,
  ``usage``, ``plan_counts``, ``storage``, ``coupons``, ``billing``, ``notifications``,
  ``planner``, ``job_runs``), each declaring the filters it sends as query shapes (``queries``);
- ``counters``: bounded counters as single conditional updates;
- ``indexes``: every index; ``migrations``: the migrate step; ``upgrade``: older documents
  brought to the current schema; ``transfer``: whole-database copies.
"""
