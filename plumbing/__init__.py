"""Service plumbing shared by the three services: no domain, no wire contract.

The services may not import each other (the import contracts in pyproject.toml); what they all
need to start, supervise and stop a process (settings rules, worker supervision, summed
metrics, gRPC health and signal handling) lives here once instead of in three copies.
"""
