"""Checks of the deployment files that need no container engine: PromQL in the dashboard and alert rules,
the metric list they imply, the alert rules' shape, compose.yaml rendered with every profile."""
