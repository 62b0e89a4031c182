"""The logging service: receives call records over gRPC and produces them to Kafka.

`logging_service.client.LogShipper` is the sending side used by the gateway and db_service;
`python -m logging_service` runs the server and `python -m logging_service tail` follows the topic.
"""
