"""Lambda handlers of the serverless pipeline: fetch, split, dispatch, collect, merge.

Handlers stay thin: media work is the core library's (`upscaler`), AWS plumbing lives in
`lambdas.aws` and the job table in `lambdas.jobs`. The core never imports boto3.
"""
