"""The end-to-end demo: the remediator against an embedded localarm (``make demo``)."""
