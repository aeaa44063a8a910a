#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` / `npx cdk deploy` (docs/AWS.md lists the -c parameters)."""

from stacks import create_app

app, _ = create_app()
app.synth()
