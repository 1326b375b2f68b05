//! The native API end to end over a socket: every endpoint's real answers checked against the
//! OpenAPI document the server publishes, scopes, per-key rate limits, and hostile requests.

mod common;

use serde_json::json;

use aranea_server::ServerConfig;
use common::{Reply, call, documented, get, post_json, raw};

#[test]
fn every_endpoint_answers_as_its_openapi_document_says() {
    let server = common::start("openapi", ServerConfig::default());
    let addr = server.addr;
    let admin = server.client("admin", &["intake", "read", "banks", "shield"], None);
    let admin = Some(admin.as_str());

    let doc = get(addr, "/api/v1/openapi.json", None).json();
    assert_eq!(doc["openapi"], "3.1.0");

    let report = post_json(
        addr,
        "/api/v1/reports",
        admin,
        &json!({"url": "https://example.org/a", "reporter": "tipline", "hotline": "ca", "notes": "seen"}),
    );
    let created = documented(&doc, "post", "/api/v1/reports", &report, 201);
    assert_eq!(created["status"], "received");
    let path = report.header("location").unwrap().to_owned();
    let fetched = get(addr, &path, admin);
    let fetched = documented(&doc, "get", "/api/v1/reports/{id}", &fetched, 200);
    assert_eq!(fetched, created);
    assert_eq!(created["reason"], serde_json::Value::Null);
    // Found by its public reference too, as typed or in lower case; not by one unknown.
    let reference = created["reference"].as_str().unwrap().to_owned();
    assert_ne!(reference, created["id"].to_string());
    for path in [
        format!("/api/v1/reports/{reference}"),
        format!("/api/v1/reports/{}", reference.to_lowercase()),
    ] {
        let by_reference = get(addr, &path, admin);
        let by_reference = documented(&doc, "get", "/api/v1/reports/{id}", &by_reference, 200);
        assert_eq!(by_reference, created, "{path}");
    }
    let unknown = if reference == "0000-0000-0000" {
        "0000-0000-0001"
    } else {
        "0000-0000-0000"
    };
    assert_eq!(
        get(addr, &format!("/api/v1/reports/{unknown}"), admin).status,
        404
    );
    // A rejected report says why.
    let id = aranea_store::ReportId::from_raw(created["id"].as_i64().unwrap());
    let rejected = server.block_on(
        server
            .store
            .reports()
            .reject_received(id, "not crawlable: the host is deny-listed"),
    );
    assert!(rejected.unwrap());
    let fetched = get(addr, &path, admin);
    let fetched = documented(&doc, "get", "/api/v1/reports/{id}", &fetched, 200);
    assert_eq!(fetched["status"], "rejected");
    assert_eq!(fetched["reason"], "not crawlable: the host is deny-listed");

    let bank = post_json(
        addr,
        "/api/v1/banks",
        admin,
        &json!({"name": "partner", "classification": "csam", "pdq_threshold": 20}),
    );
    let bank = documented(&doc, "post", "/api/v1/banks", &bank, 201);
    assert_eq!(bank["pdq_threshold"], 20);
    let conflict = post_json(
        addr,
        "/api/v1/banks",
        admin,
        &json!({"name": "partner", "classification": "csam"}),
    );
    assert_eq!(conflict.status, 409);

    let list = "{\"signal_type\":\"md5\",\"signal_value\":\"d41d8cd98f00b204e9800998ecf8427e\"}\n";
    let imported = call(
        addr,
        "POST",
        "/api/v1/banks/partner/import?format=jsonl",
        admin,
        Some("text/plain"),
        list.as_bytes(),
    );
    let summary = documented(&doc, "post", "/api/v1/banks/{name}/import", &imported, 200);
    assert_eq!(summary["added"], 1);
    let again = call(
        addr,
        "POST",
        "/api/v1/banks/partner/import?format=jsonl",
        admin,
        Some("text/plain"),
        list.as_bytes(),
    );
    assert_eq!(again.json()["duplicates"], 1);
    let bad = format!("{list}{{\"signal_type\":\"md5\",\"signal_value\":\"zz\"}}\n");
    let refused = call(
        addr,
        "POST",
        "/api/v1/banks/partner/import?format=jsonl",
        admin,
        Some("text/plain"),
        bad.as_bytes(),
    );
    documented(&doc, "post", "/api/v1/banks/{name}/import", &refused, 400);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("nothing imported")
    );

    let disabled = call(
        addr,
        "POST",
        "/api/v1/banks/partner/disable",
        admin,
        None,
        b"",
    );
    assert_eq!(
        documented(&doc, "post", "/api/v1/banks/{name}/disable", &disabled, 200)["enabled"],
        false
    );
    let enabled = call(
        addr,
        "POST",
        "/api/v1/banks/partner/enable",
        admin,
        None,
        b"",
    );
    assert_eq!(
        documented(&doc, "post", "/api/v1/banks/{name}/enable", &enabled, 200)["enabled"],
        true
    );
    let changed = call(
        addr,
        "PATCH",
        "/api/v1/banks/partner",
        admin,
        Some("application/json"),
        br#"{"pdq_threshold": 24, "description": "Shared weekly.\nBy hand."}"#,
    );
    let changed = documented(&doc, "patch", "/api/v1/banks/{name}", &changed, 200);
    assert_eq!(changed["pdq_threshold"], 24);
    assert_eq!(changed["enabled"], true);
    let unchanged = call(
        addr,
        "PATCH",
        "/api/v1/banks/nosuch",
        admin,
        Some("application/json"),
        br#"{"pdq_threshold": 24}"#,
    );
    documented(&doc, "patch", "/api/v1/banks/{name}", &unchanged, 404);
    let banks = documented(
        &doc,
        "get",
        "/api/v1/banks",
        &get(addr, "/api/v1/banks", admin),
        200,
    );
    assert_eq!(banks["banks"].as_array().unwrap().len(), 1);

    documented(
        &doc,
        "get",
        "/api/v1/matches",
        &get(addr, "/api/v1/matches?limit=10", admin),
        200,
    );
    documented(
        &doc,
        "get",
        "/api/v1/sightings",
        &get(addr, "/api/v1/sightings", admin),
        200,
    );
    let stats = documented(
        &doc,
        "get",
        "/api/v1/statistics",
        &get(addr, "/api/v1/statistics", admin),
        200,
    );
    assert_eq!(stats["reports"], 1);
    assert_eq!(stats["bank_entries"], 1);

    // The Shield endpoints are in the same document.
    let media = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/img-0001.jpg"
    ))
    .unwrap();
    let scanned = call(
        addr,
        "POST",
        "/v1/media/",
        admin,
        Some("image/jpeg"),
        &media,
    );
    documented(&doc, "post", "/v1/media/", &scanned, 200);
    let pdq = post_json(
        addr,
        "/v1/pdq/",
        admin,
        &json!({"hashes": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}),
    );
    documented(&doc, "post", "/v1/pdq/", &pdq, 200);
    let unauthenticated = get(addr, "/api/v1/statistics", None);
    documented(&doc, "get", "/api/v1/statistics", &unauthenticated, 401);
}

#[test]
fn a_bank_created_through_the_api_matches_at_once() {
    let server = common::start("bankflow", ServerConfig::default());
    let addr = server.addr;
    let key = server.client("ops", &["banks", "shield"], None);
    let key = Some(key.as_str());
    let media = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/img-0007.jpg"
    ))
    .unwrap();
    let before = call(addr, "POST", "/v1/media/", key, Some("image/jpeg"), &media).json();
    assert_eq!(before["classification"], "no-known-match");
    assert_eq!(
        post_json(
            addr,
            "/api/v1/banks",
            key,
            &json!({"name": "fresh", "classification": "csam"})
        )
        .status,
        201
    );
    let line = format!("{}\n", before["sha256_hex"].as_str().unwrap());
    let imported = call(
        addr,
        "POST",
        "/api/v1/banks/fresh/import?format=hex&signal_type=sha256",
        key,
        Some("text/plain"),
        line.as_bytes(),
    );
    assert_eq!(imported.status, 200, "{:?}", imported.json());
    let after = call(addr, "POST", "/v1/media/", key, Some("image/jpeg"), &media).json();
    assert_eq!(after["classification"], "csam");
    assert_eq!(after["match_type"], "exact");
    assert_eq!(
        call(addr, "POST", "/api/v1/banks/fresh/disable", key, None, b"").status,
        200
    );
    let disabled = call(addr, "POST", "/v1/media/", key, Some("image/jpeg"), &media).json();
    assert_eq!(disabled["classification"], "no-known-match");
}

#[test]
fn a_pdq_threshold_written_as_a_whole_float_is_an_integer() {
    // The document declares pdq_threshold `integer`, which in JSON Schema includes 16.0.
    let server = common::start("wholefloat", ServerConfig::default());
    let addr = server.addr;
    let key = server.client("ops", &["banks", "read"], None);
    let key = Some(key.as_str());
    let create = |name: &str, threshold: &str| {
        let body =
            format!(r#"{{"name":"{name}","classification":"csam","pdq_threshold":{threshold}}}"#);
        call(
            addr,
            "POST",
            "/api/v1/banks",
            key,
            Some("application/json"),
            body.as_bytes(),
        )
    };
    for (name, threshold, stored) in [("zero", "0.0", 0), ("exp", "1.6e1", 16), ("plain", "7", 7)] {
        let created = create(name, threshold);
        assert_eq!(created.status, 201, "{threshold}: {:?}", created.json());
        assert_eq!(created.json()["pdq_threshold"], stored, "{threshold}");
    }
    for (name, threshold) in [("half", "0.5"), ("negative", "-1.0"), ("huge", "1e10")] {
        let refused = create(name, threshold);
        assert_eq!(refused.status, 400, "{threshold}");
        assert!(
            refused.json()["detail"]
                .as_str()
                .unwrap()
                .contains("not a whole number"),
            "{threshold}: {:?}",
            refused.json()
        );
    }
    let names: Vec<String> = get(addr, "/api/v1/banks", key).json()["banks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["zero", "exp", "plain"],
        "a refused bank is not created"
    );
}

#[test]
fn every_integer_parameter_is_accepted_at_the_bounds_the_document_declares() {
    // A GET integer parameter the document leaves unbounded may be any integer, so the
    // server must not answer 400 to 10^30; one it bounds must be taken at its bounds.
    let server = common::start("bounds", ServerConfig::default());
    let addr = server.addr;
    let key = server.client("reader", &["intake", "read"], None);
    let key = Some(key.as_str());
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(parameters) = item["get"]["parameters"].as_array() else {
            continue;
        };
        for parameter in parameters {
            let schema = &parameter["schema"];
            if schema["type"] != "integer" {
                continue;
            }
            let low = schema
                .get("minimum")
                .map_or("-1000000000000000000000000000000".to_owned(), |v| {
                    v.to_string()
                });
            let high = schema
                .get("maximum")
                .map_or("1000000000000000000000000000000".to_owned(), |v| {
                    v.to_string()
                });
            let name = parameter["name"].as_str().unwrap();
            for bound in [low, high] {
                let url = if parameter["in"] == "path" {
                    path.replace(&format!("{{{name}}}"), &bound)
                } else {
                    format!("{path}?{name}={bound}")
                };
                let reply = get(addr, &url, key);
                assert!(
                    reply.status == 200 || reply.status == 404,
                    "{url}: {} {:?}",
                    reply.status,
                    reply.json()
                );
                tried += 1;
            }
        }
    }
    assert!(tried >= 10, "only {tried} requests");
}

#[test]
fn every_text_the_server_refuses_for_a_nul_byte_is_declared_so() {
    // The store refuses NUL in the text it keeps; the document must say so, or a client
    // generated from it sends what the server answers with a 400.
    let server = common::start("nul", ServerConfig::default());
    let addr = server.addr;
    let key = server.client("ops", &["intake", "read"], None);
    let key = Some(key.as_str());
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let no_nul = "^[^\\u0000]*$";
    for field in ["reporter", "hotline", "notes"] {
        let body = json!({ "url": "https://a.example/", field: "a\u{0}b" });
        let refused = post_json(addr, "/api/v1/reports", key, &body);
        assert_eq!(refused.status, 400, "{field}");
        let schema = &doc["components"]["schemas"]["ReportRequest"]["properties"][field];
        assert_eq!(schema["pattern"], no_nul, "{field}: {schema}");
    }
    // A report's URL is kept as sent and printed as one line: no control character inside
    // (white space around it is trimmed).
    for url in [
        "https://a.example/a\nb",
        "https://a.example/\u{1b}[2J",
        "https://a.example/\u{85}x",
    ] {
        let refused = post_json(addr, "/api/v1/reports", key, &json!({ "url": url }));
        assert_eq!(refused.status, 400, "{url:?}");
    }
    let trimmed = post_json(
        addr,
        "/api/v1/reports",
        key,
        &json!({ "url": " https://a.example/\n" }),
    );
    assert_eq!(trimmed.status, 201);
    assert_eq!(trimmed.json()["url"], "https://a.example/");
    let url_schema = &doc["components"]["schemas"]["ReportRequest"]["properties"]["url"];
    assert_eq!(
        url_schema["pattern"],
        "^[\\s\\u0085]*[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#][^\\u0000-\\u001f\\u007f-\\u009f]*[\\s\\u0085]*$",
        "{url_schema}"
    );
    let refused = get(addr, "/api/v1/notices?provider=a%00b", key);
    assert_eq!(refused.status, 400);
    let provider = doc["paths"]["/api/v1/notices"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "provider")
        .unwrap();
    assert_eq!(provider["schema"]["pattern"], no_nul, "{provider}");
    // Refused, so nothing was recorded but the trimmed URL.
    assert_eq!(get(addr, "/api/v1/statistics", key).json()["reports"], 1);
}

/// A bank's source is one bounded line, its description bounded text whose only control
/// characters are line feeds and tabs; the document declares both limits.
#[test]
fn a_bank_source_or_description_that_would_break_a_text_display_is_refused() {
    use aranea_index::bank::{MAX_BANK_DESCRIPTION_BYTES, MAX_BANK_SOURCE_BYTES};
    let server = common::start("bank-texts", ServerConfig::default());
    let addr = server.addr;
    let key = server.client("curator", &["banks"], None);
    let key = Some(key.as_str());
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let long_source = "s".repeat(MAX_BANK_SOURCE_BYTES + 1);
    let long_description = "d".repeat(MAX_BANK_DESCRIPTION_BYTES + 1);
    for (field, value, says) in [
        (
            "source",
            "hotline:ca\nforged: line",
            "control character U+000A",
        ),
        ("source", "hotline\u{0}ca", "control character U+0000"),
        (
            "description",
            "first\u{0}hidden",
            "control character U+0000",
        ),
        ("description", "over\rwritten", "control character U+000D"),
        ("source", long_source.as_str(), "at most 500"),
        ("description", long_description.as_str(), "at most 65536"),
    ] {
        let body = json!({ "name": "texts", "classification": "csam", field: value });
        let refused = post_json(addr, "/api/v1/banks", key, &body);
        let detail = documented(&doc, "post", "/api/v1/banks", &refused, 400)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            detail.contains(&format!("bank {field}")) && detail.contains(says),
            "{field}: {detail}"
        );
    }
    let schema = &doc["components"]["schemas"]["BankRequest"]["properties"];
    assert_eq!(schema["source"]["maxLength"], MAX_BANK_SOURCE_BYTES);
    assert_eq!(
        schema["source"]["pattern"],
        "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    );
    assert_eq!(
        schema["description"]["maxLength"],
        MAX_BANK_DESCRIPTION_BYTES
    );
    assert_eq!(
        schema["description"]["pattern"],
        "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
    );
    // Nothing refused was created; line breaks and tabs in a description are kept.
    assert_eq!(get(addr, "/api/v1/banks", key).json()["banks"], json!([]));
    let description = "Shared by a partner hotline.\n\tRefreshed weekly.";
    let body = json!({ "name": "texts", "classification": "csam", "source": "hotline:ca", "description": description });
    let created = post_json(addr, "/api/v1/banks", key, &body);
    let created = documented(&doc, "post", "/api/v1/banks", &created, 201);
    assert_eq!(created["description"], description);
}

/// Where the document declares a `maxLength`: `Schema.property` for a component schema's
/// property, `METHOD path ?name` for a parameter.
fn length_limits(doc: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut found = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        for (property, sub) in schema["properties"].as_object().into_iter().flatten() {
            if sub.get("maxLength").is_some() {
                found.push((format!("{name}.{property}"), sub.clone()));
            }
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["schema"].get("maxLength").is_some() {
                    let name = parameter["name"].as_str().unwrap();
                    let at = format!("{} {path} ?{name}", method.to_uppercase());
                    found.push((at, parameter["schema"].clone()));
                }
            }
        }
    }
    found
}

/// How many `maxLength` keywords the document holds anywhere.
fn count_max_lengths(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| usize::from(k == "maxLength") + count_max_lengths(v))
            .sum(),
        serde_json::Value::Array(items) => items.iter().map(count_max_lengths).sum(),
        _ => 0,
    }
}

/// The server counts a string's limit in bytes of UTF-8 (they bound storage) where JSON
/// Schema's `maxLength` counts characters. For every limited string of the document: the
/// document says so (`x-max-bytes`, the description), the server takes the limit in ASCII,
/// refuses one byte more, and refuses a value of 3-byte letters over the byte limit though
/// under `maxLength` characters, each with the message the store or handler documents.
#[test]
fn every_string_limit_the_document_declares_is_in_bytes_of_utf8_as_the_server_counts() {
    use std::cell::Cell;
    let server = common::start("byte-limits", ServerConfig::default());
    let addr = server.addr;
    let key = server.client("limits", &["intake", "read", "banks"], None);
    let key = Some(key.as_str());
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    assert_eq!(
        post_json(
            addr,
            "/api/v1/banks",
            key,
            &json!({"name": "patched", "classification": "csam"})
        )
        .status,
        201
    );
    let bank_number = Cell::new(0);
    let report = |field: &'static str| {
        move |value: &str| {
            let mut body = json!({ "url": "https://a.example/" });
            body[field] = json!(value);
            post_json(addr, "/api/v1/reports", key, &body)
        }
    };
    let create_bank = |field: &'static str| {
        let bank_number = &bank_number;
        move |value: &str| {
            bank_number.set(bank_number.get() + 1);
            let mut body =
                json!({ "name": format!("bank{}", bank_number.get()), "classification": "csam" });
            body[field] = json!(value);
            post_json(addr, "/api/v1/banks", key, &body)
        }
    };
    let change_bank = |field: &'static str| {
        move |value: &str| {
            let body = json!({ field: value });
            call(
                addr,
                "PATCH",
                "/api/v1/banks/patched",
                key,
                Some("application/json"),
                body.to_string().as_bytes(),
            )
        }
    };
    let provider = |value: &str| {
        let encoded: String = value
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        get(addr, &format!("/api/v1/notices?provider={encoded}"), key)
    };
    let store_refusal = |field: &'static str| {
        move |len: usize, max: usize| {
            format!("{field} is {len} bytes long, more than the {max} allowed")
        }
    };
    let bank_refusal = |field: &'static str| {
        move |len: usize, max: usize| {
            format!("bank {field} is {len} bytes long; at most {max} are accepted")
        }
    };
    let classification_refusal =
        |_: usize, max: usize| format!("classification: 1 to {max} bytes.");
    let provider_refusal =
        |_: usize, max: usize| format!("provider: a provider key of 1 to {max} bytes.");
    type Send<'a> = Box<dyn Fn(&str) -> common::Reply + 'a>;
    type Refusal<'a> = Box<dyn Fn(usize, usize) -> String + 'a>;
    // (where, what a value starts with, how to send it, the refusal's message).
    let probes: Vec<(&str, &str, Send, Refusal)> = vec![
        (
            "ReportRequest.url",
            "https://a.example/",
            Box::new(report("url")),
            Box::new(store_refusal("report URL")),
        ),
        (
            "ReportRequest.reporter",
            "",
            Box::new(report("reporter")),
            Box::new(store_refusal("reporter")),
        ),
        (
            "ReportRequest.hotline",
            "",
            Box::new(report("hotline")),
            Box::new(store_refusal("hotline")),
        ),
        (
            "ReportRequest.notes",
            "",
            Box::new(report("notes")),
            Box::new(store_refusal("notes")),
        ),
        (
            "BankRequest.source",
            "",
            Box::new(create_bank("source")),
            Box::new(bank_refusal("source")),
        ),
        (
            "BankRequest.classification",
            "",
            Box::new(create_bank("classification")),
            Box::new(classification_refusal),
        ),
        (
            "BankRequest.description",
            "",
            Box::new(create_bank("description")),
            Box::new(bank_refusal("description")),
        ),
        (
            "BankChange.source",
            "",
            Box::new(change_bank("source")),
            Box::new(bank_refusal("source")),
        ),
        (
            "BankChange.classification",
            "",
            Box::new(change_bank("classification")),
            Box::new(classification_refusal),
        ),
        (
            "BankChange.description",
            "",
            Box::new(change_bank("description")),
            Box::new(bank_refusal("description")),
        ),
        (
            "GET /api/v1/notices ?provider",
            "",
            Box::new(provider),
            Box::new(provider_refusal),
        ),
    ];
    let limits = length_limits(&doc);
    assert_eq!(
        limits.len(),
        count_max_lengths(&doc),
        "a maxLength outside a schema property or a parameter: {limits:?}"
    );
    let mut declared: Vec<&str> = limits.iter().map(|(at, _)| at.as_str()).collect();
    let mut probed: Vec<&str> = probes.iter().map(|(at, ..)| *at).collect();
    declared.sort_unstable();
    probed.sort_unstable();
    assert_eq!(
        declared, probed,
        "every limited string is probed, and only those"
    );
    for (at, schema) in &limits {
        let (_, prefix, send, refusal) = probes.iter().find(|(p, ..)| p == at).unwrap();
        let max = usize::try_from(schema["maxLength"].as_u64().unwrap()).unwrap();
        assert_eq!(schema["x-max-bytes"], max, "{at}: {schema}");
        let says = format!("At most {max} bytes of UTF-8");
        assert!(
            schema["description"]
                .as_str()
                .unwrap_or_default()
                .contains(&says),
            "{at}: {schema}"
        );
        let exact = format!("{prefix}{}", "a".repeat(max - prefix.len()));
        let taken = send(&exact);
        assert!(
            (200..300).contains(&taken.status),
            "{at}: {max} ASCII bytes refused: {} {:?}",
            taken.status,
            String::from_utf8_lossy(&taken.body)
        );
        let over = format!("{prefix}{}", "a".repeat(max + 1 - prefix.len()));
        let letters = (max - prefix.len()) / 3 + 1;
        let wide = format!("{prefix}{}", "語".repeat(letters));
        assert!(wide.len() > max && wide.chars().count() <= max, "{at}");
        for value in [over, wide] {
            let refused = send(&value);
            assert_eq!(refused.status, 400, "{at}: {} bytes", value.len());
            assert_eq!(
                refused.json()["detail"],
                refusal(value.len(), max),
                "{at}: {} bytes, {} characters",
                value.len(),
                value.chars().count()
            );
        }
    }
}

#[test]
fn scopes_and_rate_limits_are_enforced_per_key() {
    let server = common::start("scopes", ServerConfig::default());
    let addr = server.addr;
    let shield_only = server.client("shield-only", &["shield"], None);
    let reply = get(addr, "/api/v1/statistics", Some(&shield_only));
    assert_eq!(reply.status, 403);
    assert!(reply.json()["detail"].as_str().unwrap().contains("scope"));
    let reader = server.client("reader", &["read"], None);
    let reply = post_json(
        addr,
        "/api/v1/reports",
        Some(&reader),
        &json!({"url": "https://example.org/"}),
    );
    assert_eq!(reply.status, 403);
    assert_eq!(
        post_json(addr, "/v1/pdq/", Some(&reader), &json!({"hashes": []})).status,
        403
    );

    let limited = server.client("limited", &["read"], Some(2));
    let statuses: Vec<u16> = (0..4)
        .map(|_| get(addr, "/api/v1/statistics", Some(&limited)).status)
        .collect();
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    let throttled = get(addr, "/api/v1/statistics", Some(&limited));
    assert_eq!(throttled.status, 429);
    let wait: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1).contains(&wait));
    // Another key is not slowed by this one.
    assert_eq!(get(addr, "/api/v1/statistics", Some(&reader)).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(get(addr, "/api/v1/statistics", Some(&limited)).status, 200);
}

#[test]
fn hostile_requests_get_error_answers_never_a_crash() {
    let config = ServerConfig {
        max_json_bytes: 4096,
        max_media_bytes: 100_000,
        max_pdq_hashes: 10,
        ..ServerConfig::default()
    };
    let server = common::start("hostile", config);
    let addr = server.addr;
    let key = server.client("all", &["intake", "read", "banks", "shield"], None);
    let key = Some(key.as_str());
    let detail = |r: &Reply| r.json()["detail"].as_str().unwrap_or_default().to_owned();

    let r = call(
        addr,
        "POST",
        "/api/v1/reports",
        key,
        Some("text/plain"),
        b"{\"url\":\"https://a.example/\"}",
    );
    assert_eq!(r.status, 415, "{}", detail(&r));
    let r = call(
        addr,
        "POST",
        "/api/v1/reports",
        key,
        Some("application/json"),
        b"{\"url\": ",
    );
    assert_eq!(r.status, 400);
    assert!(detail(&r).contains("JSON parse error"));
    // Bodies that are JSON but not an object, even ones listing a request's fields in order.
    for (path, body, kind) in [
        (
            "/api/v1/banks",
            &b"[\"listed\", \"local\", \"csam\"]"[..],
            "list",
        ),
        ("/api/v1/reports", b" [\"https://a.example/\"]", "list"),
        ("/api/v1/reports", b"\"https://a.example/\"", "str"),
        ("/api/v1/reports", b"12", "int"),
        ("/api/v1/reports", b"1.5", "float"),
        ("/api/v1/reports", b"null", "NoneType"),
        ("/v1/url/", b"[\"https://a.example/\"]", "list"),
    ] {
        let r = call(addr, "POST", path, key, Some("application/json"), body);
        assert_eq!(r.status, 400, "{path} {}", String::from_utf8_lossy(body));
        assert_eq!(
            detail(&r),
            format!("Invalid data. Expected a dictionary, but got {kind}."),
            "{path}"
        );
    }
    // Bytes that are not UTF-8, even in a field the Shield API ignores (found by fuzzing).
    for (path, body) in [
        (
            "/v1/pdq/",
            &b"{\"hashes\": [], \"other\": {\"\xff\xfex\": 1}}"[..],
        ),
        ("/v1/pdq/", b"{\"hashes\": [], \"note\": \"caf\xe9\"}"),
        ("/api/v1/reports", b"{\"url\": \"https://a.example/\xc3\"}"),
    ] {
        let r = call(addr, "POST", path, key, Some("application/json"), body);
        assert_eq!(r.status, 400, "{path} {}", String::from_utf8_lossy(body));
        assert!(
            detail(&r).starts_with("JSON parse error - the body is not UTF-8"),
            "{path}: {}",
            detail(&r)
        );
    }
    assert_eq!(get(addr, "/api/v1/banks", key).json()["banks"], json!([]));
    let r = post_json(
        addr,
        "/api/v1/reports",
        key,
        &json!({"url": "https://a.example/", "admin": true}),
    );
    assert_eq!(r.status, 400, "unknown fields are refused");
    for url in ["javascript:alert(1)", "file:///etc/passwd", "not a url", ""] {
        assert_eq!(
            post_json(addr, "/api/v1/reports", key, &json!({"url": url})).status,
            400,
            "{url}"
        );
    }
    // The URL parser would drop the line break; the report keeps the URL as sent, so it is
    // refused rather than stored with a line that `aranea report show` would print.
    let r = post_json(
        addr,
        "/api/v1/reports",
        key,
        &json!({"url": "https://a.example/a\nstatus: crawled"}),
    );
    assert_eq!(r.status, 400, "{}", detail(&r));
    assert_eq!(
        detail(&r),
        "report URL holds the control character U+000A; it must be one line of printable text"
    );
    let r = post_json(
        addr,
        "/api/v1/reports",
        key,
        &json!({"url": "https://a.example/", "notes": "x".repeat(5000)}),
    );
    assert_eq!(r.status, 413);
    let r = post_json(
        addr,
        "/api/v1/reports",
        key,
        &json!({"url": "https://a.example/", "notes": "nul\u{0}byte"}),
    );
    assert_eq!(r.status, 400, "{}", detail(&r));
    assert_eq!(
        call(addr, "DELETE", "/api/v1/reports", key, None, b"").status,
        405
    );
    // The document outside the authenticated routes answers a wrong method the same way.
    let r = call(addr, "POST", "/api/v1/openapi.json", None, None, b"");
    assert_eq!(r.status, 405);
    assert_eq!(detail(&r), "Method \"POST\" not allowed.");
    // The bank routes' JSON bodies are held to max_json_bytes too.
    let big_bank =
        json!({"name": "big", "classification": "csam", "description": "x".repeat(5000)});
    for (method, path) in [("POST", "/api/v1/banks"), ("PATCH", "/api/v1/banks/big")] {
        let body = serde_json::to_vec(&big_bank).unwrap();
        let r = call(addr, method, path, key, Some("application/json"), &body);
        assert_eq!(r.status, 413, "{method} {path}: {}", detail(&r));
    }
    assert_eq!(get(addr, "/api/v1/reports/abc", key).status, 404);
    assert_eq!(get(addr, "/api/v1/reports/999999", key).status, 404);
    // A path that names no operation is a 404 with the JSON error body, whatever the method.
    for (method, path) in [
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v1/reports/"),
        ("DELETE", "/api/v1/banks/known/import/more"),
        ("POST", "/v1/nope/"),
        ("GET", "/v1/"),
    ] {
        let r = call(addr, method, path, key, None, b"");
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(detail(&r), "Not found.", "{method} {path}");
    }
    // A path segment that percent-decodes to bytes that are not UTF-8 gets the JSON error
    // body too, not axum's plain text.
    for (method, path) in [
        ("GET", "/api/v1/reports/%FF"),
        ("GET", "/api/v1/notices/%FF"),
        ("POST", "/api/v1/banks/%FF/disable"),
        ("POST", "/api/v1/banks/%FF/enable"),
        (
            "POST",
            "/api/v1/banks/%C3%28/import?format=hex&signal_type=md5",
        ),
    ] {
        let r = call(addr, method, path, key, Some("text/plain"), b"");
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert!(
            detail(&r).contains("Invalid UTF-8"),
            "{path}: {}",
            detail(&r)
        );
    }
    assert_eq!(get(addr, "/api/v1/matches?limit=0", key).status, 400);
    assert_eq!(get(addr, "/api/v1/matches?limit=99999", key).status, 400);
    assert_eq!(get(addr, "/api/v1/matches?limit=abc", key).status, 400);
    assert_eq!(
        post_json(
            addr,
            "/api/v1/banks",
            key,
            &json!({"name": "../etc", "classification": "csam"})
        )
        .status,
        400
    );
    assert_eq!(
        post_json(
            addr,
            "/api/v1/banks",
            key,
            &json!({"name": "b", "classification": "csam", "pdq_threshold": 999})
        )
        .status,
        400
    );
    assert_eq!(
        call(
            addr,
            "POST",
            "/api/v1/banks/nope/import?format=hex&signal_type=md5",
            key,
            None,
            b""
        )
        .status,
        404
    );
    assert_eq!(
        call(
            addr,
            "POST",
            "/api/v1/banks/nope/import?format=xml",
            key,
            None,
            b""
        )
        .status,
        400
    );

    let hashes: Vec<String> = (0..11)
        .map(|_| "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned())
        .collect();
    let r = post_json(addr, "/v1/pdq/", key, &json!({ "hashes": hashes }));
    assert_eq!(r.status, 400);
    assert!(detail(&r).contains("Too many"));
    assert_eq!(
        post_json(addr, "/v1/pdq/", key, &json!({"hashes": "AAAA"})).status,
        400
    );
    assert_eq!(post_json(addr, "/v1/pdq/", key, &json!([1, 2])).status, 400);
    assert_eq!(get(addr, "/v1/media/", key).status, 405);
    assert_eq!(
        call(addr, "POST", "/v1/media/", key, Some("image/jpeg"), b"").status,
        400
    );
    let big = vec![0xffu8; 100_001];
    assert_eq!(
        call(addr, "POST", "/v1/media/", key, Some("image/jpeg"), &big).status,
        413
    );
    // A body shorter than its Content-Length: the connection ends; the server must not hang.
    let reply = raw(addr, b"POST /v1/media/ HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 5000\r\nConnection: close\r\n\r\nabc");
    assert_eq!(
        reply.status, 401,
        "credentials are checked before the body is read"
    );
    // Unauthenticated uploads are refused before the body is read.
    assert_eq!(
        call(addr, "POST", "/v1/media/", None, Some("image/jpeg"), &big).status,
        401
    );
    let r = raw(addr, b"POST /v1/pdq/ HTTP/1.1\r\nHost: t\r\nAuthorization: Basic !!!\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"api\""));

    // Still healthy after all that.
    assert_eq!(get(addr, "/healthz", None).status, 200);
    let ready = get(addr, "/readyz", None);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    let metrics = String::from_utf8(get(addr, "/metrics", None).body).unwrap();
    assert!(
        metrics.contains(
            "aranea_http_requests_total{method=\"POST\",route=\"/v1/pdq/\",status=\"4xx\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "aranea_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/matches\""
    ));
    assert!(metrics.contains("aranea_reports_total "));
}

/// A client that sends part of a request's headers and then nothing (slowloris) is
/// disconnected once `header_read_timeout_secs` has passed, while other clients are served.
#[test]
fn a_client_that_stops_in_the_middle_of_its_headers_is_disconnected() {
    use std::io::{Read, Write};
    let server = common::start(
        "header-deadline",
        ServerConfig {
            header_read_timeout_secs: 1,
            ..ServerConfig::default()
        },
    );
    let mut stalled = std::net::TcpStream::connect(server.addr).unwrap();
    stalled
        .write_all(b"POST /api/v1/reports HTTP/1.1\r\nHost: aranea\r\nContent-Type: appl")
        .unwrap();
    stalled
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    // Ends at the server's close (EOF, or a reset), not at the 10 s read timeout.
    let ended = stalled.read_to_end(&mut answer);
    let waited = started.elapsed();
    let closed_by_server = match &ended {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        closed_by_server && waited < std::time::Duration::from_secs(5),
        "the stalled connection was not closed: {ended:?} after {waited:?}"
    );
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "closed before the deadline: {waited:?}"
    );
    let health = get(server.addr, "/healthz", None);
    assert_eq!(health.status, 200, "{health:?}");
}
