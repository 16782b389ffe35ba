"""Launch a Dagster job and read a run's status through the Dagster webserver's GraphQL API.

The webserver is `COELHO_DAGSTER_URL`, else `http://127.0.0.1:<COELHO_DAGSTER_PORT or 3000>`.
The job is found in whichever code location defines it (no location name to configure).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import HTTPException

from coelho_pipelines.settings import port

TIMEOUT_SECONDS = 30.0

REPOSITORIES = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on Error { message }
  }
}
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName startTime endTime }
    ... on Error { message }
  }
}
"""


def dagster_url() -> str:
    """The Dagster webserver's base URL, without a trailing slash."""
    url = os.environ.get("COELHO_DAGSTER_URL") or f"http://127.0.0.1:{port('dagster')}"
    return url.rstrip("/")


def run_url(run_id: str) -> str:
    return f"{dagster_url()}/runs/{run_id}"


async def _graphql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    import httpx

    url = f"{dagster_url()}/graphql"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            response = await client.post(url, json={"query": query, "variables": variables or {}})
    except httpx.HTTPError as error:
        raise HTTPException(503, f"Dagster is not reachable at {dagster_url()}: {error}") from error
    if response.status_code != 200:
        raise HTTPException(503, f"Dagster answered HTTP {response.status_code}")
    body = response.json()
    if body.get("errors"):
        messages = "; ".join(str(e.get("message")) for e in body["errors"])
        raise HTTPException(502, f"Dagster GraphQL error: {messages}")
    return body["data"]


async def _selector(job: str) -> dict[str, str]:
    data = (await _graphql(REPOSITORIES))["repositoriesOrError"]
    if data["__typename"] != "RepositoryConnection":
        raise HTTPException(503, f"Dagster: {data.get('message', data['__typename'])}")
    for repo in data["nodes"]:
        if any(j["name"] == job for j in repo["jobs"]):
            return {
                "repositoryLocationName": repo["location"]["name"],
                "repositoryName": repo["name"],
                "jobName": job,
            }
    raise HTTPException(404, f"Dagster has no job {job!r} in its code locations")


async def launch(job: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Launch `job` with its default config; its run id, status and Dagster URL."""
    params = {
        "selector": await _selector(job),
        "runConfigData": {},
        "executionMetadata": {
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        },
    }
    result = (await _graphql(LAUNCH, {"params": params}))["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
        raise HTTPException(502, f"Dagster refused to launch {job}: {detail or result}")
    run = result["run"]
    return {
        "job": job,
        "run_id": run["runId"],
        "status": run["status"],
        "url": run_url(run["runId"]),
    }


async def status(run_id: str) -> dict[str, Any]:
    """A run's job, status and times (epoch seconds) and its Dagster URL; 404 if unknown."""
    result = (await _graphql(STATUS, {"runId": run_id}))["runOrError"]
    if result["__typename"] != "Run":
        code = 404 if result["__typename"] == "RunNotFoundError" else 502
        raise HTTPException(code, f"Dagster: {result.get('message', result['__typename'])}")
    return {
        "job": result["jobName"],
        "run_id": result["runId"],
        "status": result["status"],
        "start_time": result.get("startTime"),
        "end_time": result.get("endTime"),
        "url": run_url(result["runId"]),
    }
