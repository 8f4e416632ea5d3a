"""The OpenAPI description of the JSON API, served at /api/openapi.json."""

from django.http import JsonResponse

ERROR = {"$ref": "#/components/schemas/Error"}
NULLABLE_STRING = {"type": ["string", "null"]}


def responses(ok_status: str, ok_schema: dict | None, *errors: str) -> dict:
    answers = {ok_status: {"description": "Success"}}
    if ok_schema is not None:
        answers[ok_status]["content"] = {"application/json": {"schema": ok_schema}}
    for status in ("401", "403", "404", *errors):
        answers[status] = {
            "description": "Error",
            "content": {"application/json": {"schema": ERROR}},
        }
    return answers


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
WORKER = {"$ref": "#/components/schemas/Worker"}
DEPLOYMENT = {"$ref": "#/components/schemas/Deployment"}

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Functions API", "version": "1"},
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "Deployment": {
                "type": "object",
                "required": [
                    "id",
                    "status",
                    "functions",
                    "deploymentId",
                    "deploymentUrl",
                    "createdAt",
                ],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "status": {"enum": ["queued", "building", "ready", "error", "canceled"]},
                    "backend": {"type": "string"},
                    "functions": {"type": "array", "items": {"type": "string"}},
                    "errorMessage": NULLABLE_STRING,
                    "deploymentId": NULLABLE_STRING,
                    "deploymentUrl": NULLABLE_STRING,
                    "createdAt": {"type": "string"},
                    "readyAt": NULLABLE_STRING,
                },
            },
            "Worker": {
                "type": "object",
                "required": [
                    "id",
                    "name",
                    "tenant",
                    "url",
                    "public",
                    "production",
                    "latestDeployment",
                ],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "name": {"type": "string"},
                    "tenant": {"type": "string"},
                    "url": {"type": "string"},
                    "public": {"type": "boolean"},
                    "production": {"oneOf": [DEPLOYMENT, {"type": "null"}]},
                    "latestDeployment": {"oneOf": [DEPLOYMENT, {"type": "null"}]},
                    "deployment": DEPLOYMENT,
                    "createdAt": {"type": "string"},
                },
            },
            "LogLine": {
                "type": "object",
                "required": ["id", "requestId", "seq", "level", "message", "timestamp"],
                "properties": {
                    "id": {"type": "integer"},
                    "requestId": {"type": "string"},
                    "seq": {"type": "integer"},
                    "function": {"type": "string"},
                    "level": {"enum": ["debug", "info", "log", "warn", "error"]},
                    "message": {"type": "string"},
                    "timestamp": {"type": "string"},
                    "deploymentId": {"type": "string"},
                },
            },
        },
    },
    "security": [{"apiKey": []}],
    "paths": {
        "/api/workers": {
            "get": {
                "summary": "List workers",
                "responses": responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["workers"],
                        "properties": {"workers": {"type": "array", "items": WORKER}},
                    },
                ),
            },
            "post": {
                "summary": "Deploy: create the worker if needed and a new deployment",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name", "code"],
                                "properties": {
                                    "name": {"type": "string", "maxLength": 30},
                                    "code": {"type": "string"},
                                    "tenant": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": responses("202", WORKER, "400", "409", "413", "429"),
            },
        },
        "/api/workers/{id}": {
            "parameters": [ID],
            "get": {"summary": "A worker", "responses": responses("200", WORKER)},
            "delete": {"summary": "Delete a worker", "responses": responses("204", None)},
        },
        "/api/workers/{id}/deployments": {
            "parameters": [ID],
            "get": {
                "summary": "A worker's deployments, newest first",
                "responses": responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["deployments"],
                        "properties": {"deployments": {"type": "array", "items": DEPLOYMENT}},
                    },
                ),
            },
        },
        "/api/workers/{id}/production": {
            "parameters": [ID],
            "post": {
                "summary": "Promote a ready deployment, or roll back to an earlier one",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": responses("200", WORKER, "409"),
            },
        },
        "/api/deployments/{id}": {
            "parameters": [ID],
            "get": {"summary": "A deployment", "responses": responses("200", DEPLOYMENT)},
        },
        "/api/deployments/{id}/cancel": {
            "parameters": [ID],
            "post": {
                "summary": "Cancel a build that has not ended (on its back end too)",
                "responses": responses("200", DEPLOYMENT, "409"),
            },
        },
        "/api/workers/{id}/logs/poll": {
            "parameters": [ID, {"name": "cursor", "in": "query", "schema": {"type": "integer"}}],
            "get": {
                "summary": "Log lines after the cursor, at once",
                "responses": responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["lines", "cursor"],
                        "properties": {
                            "lines": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/LogLine"},
                            },
                            "cursor": {"type": "integer"},
                        },
                    },
                ),
            },
        },
        "/api/workers/{id}/logs": {
            "parameters": [ID],
            "get": {
                "summary": "Live log lines as Server-Sent Events; Last-Event-ID resumes",
                "responses": {
                    "200": {"description": "text/event-stream of LogLine events"},
                    **{k: v for k, v in responses("200", None).items() if k != "200"},
                },
            },
        },
    },
}


def openapi(request):
    return JsonResponse(SPEC)
