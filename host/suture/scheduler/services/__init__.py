"""Scheduler operations. Each public function takes a fresh ``Session``, runs one transaction
(``with session.begin()``) and appends its audit record inside that same transaction."""
