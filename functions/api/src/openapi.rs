//! `GET /openapi.json`: the OpenAPI 3 description of every route. A test checks it against
//! [`crate::app::ROUTES`] and the router.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn job_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}})
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
}

/// The document, built once per cold start.
pub fn document() -> Value {
    let statuses = json!(["pending", "queued", "processing", "completed", "failed", "cancelled"]);
    let kinds = json!(shared::job::JobKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>());
    let retail_submit = json!({
        "summary": "Submit a Retail Pulse image job (the seed's contract); it also shows in /jobs as kind image",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["count", "visits"], "properties": {
            "count": {"type": "integer", "description": "must equal the number of visits"},
            "visits": {"type": "array", "items": {"type": "object", "required": ["store_id", "image_url", "visit_time"], "properties": {
                "store_id": {"type": "string"}, "image_url": {"type": "array", "items": {"type": "string", "format": "uri"}}, "visit_time": {"type": "string"}}}}}}}}},
        "responses": {"201": {"description": "{job_id}"}, "400": error_response("Missing fields or count != visits.length")}
    });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "serverless-jobs",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Jobs API: submit, list, inspect and steer jobs processed by the worker and ingest functions."
        },
        "paths": {
            "/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3 document"}}}},
            "/auth/config": {"get": {"summary": "How to sign in: the issuer, the dashboard's client id and the OAuth2 endpoints (mode off: no sign-in)", "security": [],
                "responses": {"200": {"description": "{mode, issuer, client_id, authorize_url, token_url, logout_url, scope}"}}}},
            "/me": {"get": {"summary": "Who the token names: owner id, name, admin, scopes",
                "responses": {"200": {"description": "{owner, name, admin, scopes}"}, "401": error_response("No valid token")}}},
            "/jobs": {
                "post": {
                    "summary": "Submit a job",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255},
                                    "description": "Same key and body -> the same job, no second message"}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewJob"}}}},
                    "responses": {
                        "201": job_response("Created and enqueued"),
                        "200": job_response("The job an earlier request with this Idempotency-Key created"),
                        "400": error_response("Invalid body or payload (the message names the field)"),
                        "409": error_response("Idempotency-Key reused with a different body"),
                        "503": error_response("Storage or queue unavailable; nothing was kept")
                    }
                },
                "get": {
                    "summary": "List jobs, newest first",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "array", "items": {"type": "string", "enum": statuses}}, "style": "form", "explode": true},
                        {"name": "kind", "in": "query", "schema": {"type": "string", "enum": kinds}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
                        {"name": "next", "in": "query", "schema": {"type": "string"}, "description": "Opaque cursor from the previous page"}
                    ],
                    "responses": {
                        "200": {"description": "A page", "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                            "next": {"type": "string", "nullable": true}}}}}},
                        "400": error_response("Bad filter or cursor")
                    }
                }
            },
            "/jobs/retry": {"post": {
                "summary": "Retry failed jobs in bulk",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "kind": {"type": "string", "enum": kinds}, "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                    "all": {"type": "boolean"}, "dry_run": {"type": "boolean"}}}}}},
                "responses": {"200": {"description": "How many were retried (or would be, with dry_run)"}, "400": error_response("No filter given")}
            }},
            "/jobs/{id}": {
                "parameters": [id_param()],
                "get": {"summary": "One job, with its timeline", "responses": {"200": job_response("The job"), "404": error_response("No such job")}},
                "delete": {"summary": "Cancel a pending or queued job", "responses": {"200": job_response("Cancelled"), "404": error_response("No such job"), "409": error_response("Not pending or queued")}}
            },
            "/jobs/{id}/status": {
                "parameters": [id_param()],
                "put": {
                    "summary": "Set the status by hand (through the state machine)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": statuses}}}}}},
                    "responses": {"200": job_response("Updated"), "400": error_response("Unknown status"), "404": error_response("No such job"), "409": error_response("Illegal transition")}
                }
            },
            "/jobs/{id}/retry": {
                "parameters": [id_param()],
                "post": {"summary": "Retry a failed job", "responses": {"200": job_response("Queued again"), "404": error_response("No such job"), "409": error_response("Not failed")}}
            },
            "/jobs/{id}/images": {
                "parameters": [id_param()],
                "get": {"summary": "Per-image results of an image job's latest run: store, url, width, height, perimeter, bytes read; and each failed image's error",
                    "responses": {"200": {"description": "{job_id, status, images_total, parts_total, parts_done, images: [...], errors: [{store_id, url, error}]}"}, "400": error_response("Not an image job"), "404": error_response("No such job")}}
            },
            "/api/submit/": {"post": retail_submit.clone()},
            "/api/submit": {"post": retail_submit},
            "/api/status": {"get": {
                "summary": "Retail Pulse job status",
                "parameters": [{"name": "jobid", "in": "query", "required": true, "schema": {"type": "string", "format": "uuid"}}],
                "responses": {
                    "200": {"description": "{status: completed | ongoing | failed, job_id, error?: [{store_id, error}]}"},
                    "400": error_response("No jobid, or Job ID not found")
                }
            }},
            "/api/v1/files/upload": {"post": {
                "summary": "Upload a .jsonl / .jsonl.gz file (Event Horizon); the ingest function processes it",
                "parameters": [{"name": "filename", "in": "query", "schema": {"type": "string"}, "description": "File name of a raw (non-multipart) body; or the X-File-Name header"}],
                "requestBody": {"required": true, "content": {
                    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {
                    "202": {"description": "Stored; ingest queued", "content": {"application/json": {"schema": {"type": "object", "properties": {"job_id": {"type": "string", "format": "uuid"}, "status": {"type": "string"}}}}}},
                    "400": error_response("Not .jsonl/.jsonl.gz, empty, or no file"),
                    "413": error_response("Larger than the upload limit (use POST /api/v1/files)")
                }
            }},
            "/api/v1/files": {"post": {
                "summary": "A presigned S3 PUT URL for a large file, and its ingest job",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["file_name", "size"], "properties": {"file_name": {"type": "string"}, "size": {"type": "integer"}}}}}},
                "responses": {"201": {"description": "job_id, key (under uploads/<owner>/), upload_url, method, headers, expires_at, max_bytes"}, "400": error_response("Bad name or size"), "413": error_response("Too large")}
            }},
            "/api/v1/jobs/{job_id}": {
                "parameters": [{"name": "job_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
                "get": {"summary": "Ingest status: queued | processing | completed | failed, progress, counts", "responses": {"200": {"description": "Status"}, "404": error_response("No such ingest job")}}
            },
            "/api/v1/jobs/{job_id}/entries": {
                "parameters": [{"name": "job_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
                "get": {
                    "summary": "Stored log entries in line order, with counts by level",
                    "parameters": [
                        {"name": "level", "in": "query", "schema": {"type": "string", "enum": ["trace", "debug", "info", "warn", "error", "fatal"]}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                        {"name": "next", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": {"200": {"description": "A page of entries"}, "400": error_response("Bad level or cursor"), "404": error_response("No such ingest job")}
                }
            },
            "/stats": {"get": {"summary": "Counts by status and kind, completions per minute (last hour)", "responses": {"200": {"description": "Statistics"}}}},
            "/queues": {"get": {"summary": "Approximate depth of each SQS queue (waiting, in flight, delayed), dead-letter queues included", "responses": {"200": {"description": "{queues: [{name, role: work|dead_letter, visible, in_flight, delayed} or {name, role, error}]}"}}}}
        },
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token of the stack's issuer (Cognito; locally infra/token). Without one: 401. Another owner's job: 404. Admins (group admin) see all. Over a per-owner limit: 429 with Retry-After."}},"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "NewJob": {"type": "object", "required": ["kind", "payload"], "properties": {
                "kind": {"type": "string", "enum": kinds},
                "payload": {"type": "object", "description": "image: {count, visits:[{store_id, image_url:[...], visit_time}]}; archive: {asset_id, source: s3://bucket/key}; log_ingest: {bucket, key}"},
                "priority": {"type": "integer", "minimum": 1, "maximum": 5, "default": 3},
                "scheduled_for": {"type": "string", "format": "date-time"}}},
            "Job": {"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"}, "kind": {"type": "string", "enum": kinds},
                "status": {"type": "string", "enum": statuses}, "priority": {"type": "integer"},
                "payload": {"type": "object"}, "result": {"type": "object"}, "error": {"type": "string"},
                "attempts": {"type": "integer"}, "max_attempts": {"type": "integer"},
                "progress": {"type": "object", "properties": {"percent": {"type": "integer"}, "stage": {"type": "string"}}},
                "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                "started_at": {"type": "string", "format": "date-time"}, "completed_at": {"type": "string", "format": "date-time"},
                "scheduled_for": {"type": "string", "format": "date-time"},
                "timeline": {"type": "array", "items": {"type": "object", "properties": {
                    "at": {"type": "string", "format": "date-time"}, "status": {"type": "string"}, "attempt": {"type": "integer"}, "message": {"type": "string"}}}},
                "version": {"type": "integer"}}}
        }}
    })
}
