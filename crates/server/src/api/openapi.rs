//! The OpenAPI 3.1 description of `/api/v1` and the Shield-compatible `/v1`, served at
//! `/api/v1/openapi.json`. Written next to the handlers and checked against real responses
//! by tests/api.rs, so it cannot drift from what the server answers.

use aranea_index::bank::{
    MAX_BANK_DESCRIPTION_BYTES, MAX_BANK_SOURCE_BYTES, MAX_CLASSIFICATION_BYTES, MAX_PDQ_THRESHOLD,
};
use aranea_store::{MAX_NAME_BYTES, MAX_NOTES_BYTES, MAX_URL_BYTES};
use axum::Json;
use serde_json::{Value, json};

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

fn error_responses() -> Value {
    let problem = json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    json!({
        "400": { "description": "Malformed request", "content": problem["content"] },
        "401": { "description": "Missing or invalid credentials", "content": problem["content"] },
        "403": { "description": "The key lacks the scope, or is bound to another hotline", "content": problem["content"] },
        "429": { "description": "Rate limit exceeded; see Retry-After", "content": problem["content"] },
    })
}

/// `responses` with the errors an operation can answer besides the standard four: 404 (no
/// such resource), 408 (body not sent within the deadline), 409 (exists), 413 (body over the
/// limit), 415 (body of a type not accepted), 503 (a decoder unavailable).
fn also(mut responses: Value, codes: &[u16]) -> Value {
    let problem =
        json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    for code in codes {
        let description = match code {
            404 => "No such resource",
            408 => "The body did not arrive within the server's deadline; the connection is closed",
            409 => "It exists already",
            413 => "The body is larger than the server's limit",
            415 => "The body's type (Content-Type, or the media's own) is not accepted",
            503 => "Video decoding is unavailable on this server",
            _ => "Error",
        };
        responses[code.to_string()] = json!({ "description": description, "content": problem });
    }
    responses
}

/// How a URL to scan (`/v1/url/`) begins: http or https with a host. The server parses the
/// rest as a browser would (dropping tabs and line breaks) and ignores surrounding whitespace.
const SCANNED_URL: &str = "^\\s*[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#]";

/// A report's URL: http or https with a host, white space around it trimmed (Rust's, which
/// counts U+0085 where ECMAScript's `\s` does not), and no control character inside, since
/// the report keeps the URL as sent and prints it as one line.
const REPORTED_URL: &str = "^[\\s\\u0085]*[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#][^\\u0000-\\u001f\\u007f-\\u009f]*[\\s\\u0085]*$";

/// Text the store keeps, which refuses a NUL (PostgreSQL text cannot hold one).
pub(crate) const NO_NUL: &str = "^[^\\u0000]*$";

/// `schema` (a string's) limited to `max` bytes of UTF-8, as the server counts: its limits
/// bound what is stored, in bytes. JSON Schema's `maxLength` counts characters, so alone it
/// would allow `max` characters of up to 4 bytes each, which the server refuses: it stays as
/// a necessary bound, and the description and `x-max-bytes` state the server's rule.
pub(crate) fn at_most_bytes(mut schema: Value, max: usize) -> Value {
    schema["maxLength"] = json!(max);
    schema["x-max-bytes"] = json!(max);
    let rule = format!(
        "At most {max} bytes of UTF-8: a character outside ASCII counts 2 to 4 (maxLength counts characters, so it is not enough)."
    );
    schema["description"] = match schema["description"].as_str() {
        Some(first) => json!(format!("{first} {rule}")),
        None => json!(rule),
    };
    schema
}

/// A bank's source: at most `max` bytes, no control character.
fn one_line(max: usize) -> Value {
    at_most_bytes(
        json!({ "type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$" }),
        max,
    )
}

/// A bank's classification: as [`one_line`], and not empty.
fn label(max: usize) -> Value {
    let mut schema = one_line(max);
    schema["minLength"] = json!(1);
    schema
}

/// A bank's description: at most `max` bytes, no control character but line feeds and tabs.
fn free_text(max: usize) -> Value {
    at_most_bytes(
        json!({ "type": "string", "pattern": "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$" }),
        max,
    )
}

/// `schema` (a string's) that also admits null.
fn or_null(mut schema: Value) -> Value {
    schema["type"] = json!(["string", "null"]);
    schema
}

fn ok(description: &str, schema: &str) -> Value {
    let mut responses = error_responses();
    responses["200"] = json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    });
    responses
}

fn json_body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn paging() -> Value {
    json!([
        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
        { "name": "before", "in": "query", "schema": { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }, "description": "Only rows with a smaller id (next page)." }
    ])
}

/// The document.
pub fn spec() -> Value {
    let mut created_report = ok("The report", "Report");
    created_report["201"] = created_report["200"].take();
    if let Some(map) = created_report.as_object_mut() {
        map.remove("200");
    }
    let mut created_bank = ok("The bank", "Bank");
    created_bank["201"] = created_bank["200"].take();
    if let Some(map) = created_bank.as_object_mut() {
        map.remove("200");
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Aranea API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Native API (/api/v1) and the Arachnid Shield v1 compatible matching API (/v1). Errors are {\"detail\": text}. A string's length limit counts bytes of UTF-8 (its x-max-bytes); its maxLength, in characters, is the same number and so looser for text outside ASCII."
        },
        "components": {
            "securitySchemes": {
                "basic": { "type": "http", "scheme": "basic" },
                "bearer": { "type": "http", "scheme": "bearer", "description": "Token NAME:SECRET" }
            },
            "schemas": schemas(),
        },
        "security": [ { "basic": [] }, { "bearer": [] } ],
        "paths": {
            "/api/v1/reports": { "post": { "summary": "Submit a URL to crawl (scope intake)", "requestBody": json_body("ReportRequest"), "responses": also(created_report, &[408, 413, 415]) } },
            "/api/v1/reports/{id}": { "get": { "summary": "A report and its status (scope intake or read)",
                "parameters": [ { "name": "id", "in": "path", "required": true, "description": "The report's id, or its public reference (XXXX-XXXX-XXXX; case and dashes do not matter as long as it is not all digits).", "schema": { "type": "string" } } ],
                "responses": also(ok("The report", "Report"), &[404]) } },
            "/api/v1/banks": {
                "get": { "summary": "List banks (scope read or banks)", "responses": ok("Banks", "BankList") },
                "post": { "summary": "Create a bank (scope banks)", "requestBody": json_body("BankRequest"), "responses": also(created_bank, &[408, 409, 413, 415]) }
            },
            "/api/v1/banks/{name}": { "patch": { "summary": "Change a bank's settings (scope banks); absent or null fields stay as they are, and a refused value changes nothing",
                "parameters": [ { "name": "name", "in": "path", "required": true, "schema": { "type": "string" } } ],
                "requestBody": json_body("BankChange"), "responses": also(ok("The bank", "Bank"), &[404, 408, 413, 415]) } },
            "/api/v1/banks/{name}/import": { "post": { "summary": "Import a hash list (scope banks); any bad line imports nothing",
                "parameters": [
                    { "name": "name", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "format", "in": "query", "required": true, "schema": { "enum": ["hma-csv", "hex", "jsonl"] } },
                    { "name": "signal_type", "in": "query", "schema": { "enum": ["pdq", "md5", "sha1", "sha256"] } }
                ],
                "requestBody": { "required": true, "content": { "text/plain": { "schema": { "type": "string" } } } },
                "responses": also(ok("Import summary", "ImportSummary"), &[404, 408, 413, 415]) } },
            "/api/v1/banks/{name}/disable": { "post": { "summary": "Stop a bank matching (scope banks)",
                "parameters": [ { "name": "name", "in": "path", "required": true, "schema": { "type": "string" } } ],
                "responses": also(ok("The bank", "Bank"), &[404]) } },
            "/api/v1/banks/{name}/enable": { "post": { "summary": "Let a bank match again (scope banks)",
                "parameters": [ { "name": "name", "in": "path", "required": true, "schema": { "type": "string" } } ],
                "responses": also(ok("The bank", "Bank"), &[404]) } },
            "/api/v1/matches": { "get": { "summary": "Recent bank matches, newest first (scope read)", "parameters": paging(), "responses": ok("Matches", "MatchList") } },
            "/api/v1/sightings": { "get": { "summary": "Recent sightings, newest first (scope read)", "parameters": paging(), "responses": ok("Sightings", "SightingList") } },
            "/api/v1/statistics": { "get": { "summary": "Counters (scope read)", "responses": ok("Counters", "Statistics") } },
            "/v1/media/": { "post": { "summary": "Shield: scan media bytes (scope shield)",
                "requestBody": { "required": true, "content": { "image/*": { "schema": { "type": "string", "format": "binary" } }, "video/*": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": also(ok("Scan result", "ScannedMedia"), &[408, 413, 415, 503]) } },
            "/v1/url/": { "post": { "summary": "Shield: fetch a URL and scan it (scope shield)", "requestBody": json_body("ScanUrl"), "responses": also(ok("Scan result", "ScannedMedia"), &[408, 413, 415, 503]) } },
            "/v1/pdq/": { "post": { "summary": "Shield: match PDQ hashes (scope shield)", "requestBody": json_body("ScanPdq"), "responses": also(ok("Per-hash results", "ScannedPdqHashes"), &[408, 413, 415]) } },
        }
    });
    merge(&mut doc["paths"], super::notices::openapi_paths(ok));
    let (paths, schemas) = crate::stats::openapi(ok);
    merge(&mut doc["paths"], paths);
    merge(&mut doc["components"]["schemas"], schemas);
    merge(
        &mut doc["components"]["schemas"],
        super::notices::openapi_schemas(),
    );
    doc
}

/// Adds the keys of `part` (an object) to `into` (an object).
fn merge(into: &mut Value, part: Value) {
    if let (Some(into), Value::Object(part)) = (into.as_object_mut(), part) {
        into.extend(part);
    }
}

fn schemas() -> Value {
    let near = json!({ "type": "object", "required": ["timestamp", "sha1_base32", "sha256_hex", "classification", "distance"],
        "properties": { "timestamp": { "type": "number" }, "sha1_base32": { "type": "string" }, "sha256_hex": { "type": "string" },
            "classification": { "type": "string" }, "distance": { "type": "integer" } } });
    json!({
        "Error": { "type": "object", "required": ["detail"], "properties": { "detail": { "type": "string" } } },
        "ReportRequest": { "type": "object", "required": ["url"], "additionalProperties": false, "properties": {
            "url": at_most_bytes(json!({ "type": "string", "pattern": REPORTED_URL, "description": "An absolute http or https URL with a host, without control characters." }), MAX_URL_BYTES),
            "reporter": at_most_bytes(json!({ "type": ["string", "null"], "minLength": 1, "pattern": NO_NUL, "description": "Absent or null: the API client's name." }), MAX_NAME_BYTES),
            "hotline": at_most_bytes(json!({ "type": ["string", "null"], "minLength": 1, "pattern": NO_NUL, "description": "Absent or null: the client's own hotline for a client bound to one (any other is refused with 403), else \"default\"." }), MAX_NAME_BYTES),
            "notes": at_most_bytes(json!({ "type": "string", "pattern": NO_NUL }), MAX_NOTES_BYTES) } },
        "Report": { "type": "object", "required": ["id", "reference", "url", "reporter", "hotline", "notes", "reported_at", "status", "reason"], "properties": {
            "id": { "type": "integer" },
            "reference": { "type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$", "description": "The public reference: random, unguessable, what to tell a member of the public instead of the sequential id." },
            "url": { "type": "string" }, "reporter": { "type": "string" }, "hotline": { "type": "string" },
            "notes": { "type": "string" }, "reported_at": { "type": "integer" },
            "status": { "enum": ["received", "queued", "crawled", "rejected"] },
            "reason": { "type": ["string", "null"], "description": "Why a rejected report was rejected (its URL's error or skip, or where its redirects ended), or why an operator set its status by hand (corrected by USER: NOTE) until it settles again; null otherwise." } } },
        "BankRequest": { "type": "object", "required": ["name", "classification"], "additionalProperties": false, "properties": {
            "name": { "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$" }, "source": one_line(MAX_BANK_SOURCE_BYTES),
            "classification": label(MAX_CLASSIFICATION_BYTES), "description": free_text(MAX_BANK_DESCRIPTION_BYTES), "kind": { "enum": ["ordinary", "allow-list"] },
            "pdq_threshold": { "type": ["integer", "null"], "minimum": 0, "maximum": MAX_PDQ_THRESHOLD } } },
        "BankChange": { "type": "object", "minProperties": 1, "additionalProperties": false, "properties": {
            "source": or_null(one_line(MAX_BANK_SOURCE_BYTES)), "classification": or_null(label(MAX_CLASSIFICATION_BYTES)),
            "description": or_null(free_text(MAX_BANK_DESCRIPTION_BYTES)), "kind": { "enum": ["ordinary", "allow-list", null] },
            "pdq_threshold": { "type": ["integer", "null"], "minimum": 0, "maximum": MAX_PDQ_THRESHOLD } } },
        "Bank": { "type": "object", "required": ["id", "name", "source", "classification", "kind", "pdq_threshold", "enabled", "created_at"], "properties": {
            "id": { "type": "integer" }, "name": { "type": "string" }, "description": { "type": "string" }, "source": { "type": "string" },
            "classification": { "type": "string" }, "kind": { "enum": ["ordinary", "allow-list"] }, "pdq_threshold": { "type": "integer" },
            "enabled": { "type": "boolean" }, "created_at": { "type": "integer" } } },
        "BankList": { "type": "object", "required": ["banks"], "properties": { "banks": { "type": "array", "items": { "$ref": "#/components/schemas/Bank" } } } },
        "ImportSummary": { "type": "object", "required": ["rows", "invalid", "added", "duplicates"], "properties": {
            "rows": { "type": "integer" }, "invalid": { "type": "integer" }, "added": { "type": "integer" }, "duplicates": { "type": "integer" } } },
        "Match": { "type": "object", "required": ["id", "sighting_id", "media_sha256", "url", "page_url", "bank", "entry", "signal_type", "distance", "classification", "matched_at"], "properties": {
            "id": { "type": "integer" }, "sighting_id": { "type": "integer" }, "media_sha256": { "type": "string" }, "url": { "type": "string" },
            "page_url": { "type": "string" }, "bank": { "type": "string" }, "entry": { "type": "integer" }, "signal_type": { "type": "string" },
            "distance": { "type": "integer" }, "classification": { "type": "string" }, "matched_at": { "type": "integer" } } },
        "MatchList": { "type": "object", "required": ["matches"], "properties": { "matches": { "type": "array", "items": { "$ref": "#/components/schemas/Match" } } } },
        "Sighting": { "type": "object", "required": ["id", "media_sha256", "url", "page_url", "member_path", "first_seen_at", "last_seen_at", "server_ip"], "properties": {
            "id": { "type": "integer" }, "media_sha256": { "type": "string" }, "url": { "type": "string" }, "page_url": { "type": "string" },
            "member_path": { "type": "string" }, "first_seen_at": { "type": "integer" }, "last_seen_at": { "type": "integer" }, "server_ip": nullable("string") } },
        "SightingList": { "type": "object", "required": ["sightings"], "properties": { "sightings": { "type": "array", "items": { "$ref": "#/components/schemas/Sighting" } } } },
        "Statistics": { "type": "object", "required": ["reports", "hosts", "urls", "urls_queued", "fetches", "media", "sightings", "matches", "review_backlog", "banks", "bank_entries"],
            "properties": { "reports": { "type": "integer" }, "hosts": { "type": "integer" }, "urls": { "type": "integer" }, "urls_queued": { "type": "integer" },
                "fetches": { "type": "integer" }, "media": { "type": "integer" }, "sightings": { "type": "integer" }, "matches": { "type": "integer" },
                "review_backlog": { "type": "integer" }, "banks": { "type": "integer" }, "bank_entries": { "type": "integer" } } },
        "ScanUrl": { "type": "object", "required": ["url"], "properties": { "url": { "type": "string", "pattern": SCANNED_URL } } },
        // Standard base64 of 32 bytes: 43 characters, the last with its two unused bits zero,
        // then one `=` (the server also ignores surrounding whitespace).
        "ScanPdq": { "type": "object", "required": ["hashes"], "properties": { "hashes": { "type": "array",
            "items": { "type": "string", "pattern": "^\\s*[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\\s*$" } } } },
        "NearMatchDetail": near,
        "ScannedMedia": { "type": "object", "required": ["sha1_base32", "sha256_hex", "size_bytes", "classification", "match_type", "near_match_details"], "properties": {
            "sha1_base32": { "type": "string" }, "sha256_hex": { "type": "string" }, "size_bytes": { "type": "integer" },
            "classification": { "enum": ["csam", "harmful-abusive-material", "no-known-match"] },
            "match_type": { "enum": ["exact", "near", null] },
            "near_match_details": { "type": "array", "items": { "$ref": "#/components/schemas/NearMatchDetail" } } } },
        "ScannedPdq": { "type": "object", "required": ["classification", "match_type", "near_match_details"], "properties": {
            "classification": { "enum": ["csam", "harmful-abusive-material", "no-known-match"] },
            "match_type": { "enum": ["near", null] },
            "near_match_details": { "oneOf": [ { "$ref": "#/components/schemas/NearMatchDetail" }, { "type": "null" } ] } } },
        "ScannedPdqHashes": { "type": "object", "required": ["scanned_hashes"], "properties": {
            "scanned_hashes": { "type": "object", "additionalProperties": { "$ref": "#/components/schemas/ScannedPdq" } } } },
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}
