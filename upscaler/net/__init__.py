"""Network helpers of the core (stdlib only): the SSRF guard every URL download goes through."""
