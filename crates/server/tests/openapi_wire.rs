//! The served OpenAPI document is the wire. Everything here is generated from the document the
//! real server serves, so a new enum, field, example or operation is covered without editing
//! this file:
//! - every enum value in a request body is accepted and read back unchanged, and every value
//!   the server's own deserialiser accepts there is listed (or refused by validation);
//! - every request example is accepted with the operation's documented success status;
//! - requests the server refuses get a status the operation documents;
//! - every JSON answer received conforms to the schema documented for its status.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Client, TestServer};

const DOC_PATH: &str = "/api/v1/openapi.json";

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn show(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k)
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

struct Doc(Value);

impl Doc {
    async fn fetch(s: &TestServer) -> Doc {
        let r = s.http.get(s.url(DOC_PATH)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        Doc(r.json().await.unwrap())
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.strip_prefix("#/components/schemas/").expect("local ref");
                let target = &self.0["components"]["schemas"][name];
                assert!(!target.is_null(), "dangling $ref {r}");
                self.resolve(target)
            }
            None => schema,
        }
    }

    /// (method, path, operation) for every operation.
    fn operations(&self) -> Vec<(Method, String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in self.0["paths"].as_object().expect("paths") {
            for (m, op) in item.as_object().unwrap() {
                let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
                out.push((method, path.clone(), op));
            }
        }
        assert!(out.len() > 10, "the document lists the API's operations");
        out
    }

    /// Every place under `schema` whose values form an enum, with the listed values (null, which
    /// stands for "absent", left out).
    fn enum_locations(&self, schema: &Value) -> Vec<(Vec<Seg>, Vec<Value>)> {
        let mut out = Vec::new();
        self.walk(schema, &mut Vec::new(), &mut out, 0);
        out
    }

    fn walk(
        &self,
        schema: &Value,
        path: &mut Vec<Seg>,
        out: &mut Vec<(Vec<Seg>, Vec<Value>)>,
        depth: usize,
    ) {
        assert!(depth < 20, "schema nests too deep at {}", show(path));
        let schema = self.resolve(schema);
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
            out.push((path.clone(), values));
            return;
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for sub in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.walk(sub, path, out, depth + 1);
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                path.push(Seg::Key(k.clone()));
                self.walk(sub, path, out, depth + 1);
                path.pop();
            }
        }
        if let Some(items) = schema.get("items") {
            path.push(Seg::Index(0));
            self.walk(items, path, out, depth + 1);
            path.pop();
        }
    }

    /// Checks a JSON answer against the schema documented for its status: types, enums,
    /// required and unknown properties, oneOf/anyOf/allOf.
    fn check_response(&self, method: &Method, path: &str, status: StatusCode, body: &Value) {
        let op = &self.0["paths"][path][method.as_str().to_lowercase()];
        let resp = &op["responses"][status.as_str()];
        assert!(
            !resp.is_null(),
            "{method} {path} answered {status}, which the document does not list: {body}"
        );
        let schema = &resp["content"]["application/json"]["schema"];
        if !schema.is_null() {
            if let Err(e) = self.conforms(schema, body, "") {
                panic!("{method} {path} {status}: answer does not match the document: {e}\n{body}");
            }
        }
    }

    fn conforms(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.conforms(s, v, at)?;
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let ok = one
                .iter()
                .filter(|s| self.conforms(s, v, at).is_ok())
                .count();
            if ok != 1 {
                return Err(format!("{at}: matches {ok} of the oneOf branches, not 1"));
            }
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            if !any.iter().any(|s| self.conforms(s, v, at).is_ok()) {
                return Err(format!("{at}: matches no anyOf branch"));
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            if !values.contains(v) {
                return Err(format!("{at}: {v} is not one of {values:?}"));
            }
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() {
            let fits = types.iter().any(|t| match *t {
                "null" => v.is_null(),
                "boolean" => v.is_boolean(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "string" => v.is_string(),
                "array" => v.is_array(),
                "object" => v.is_object(),
                _ => false,
            });
            if !fits {
                return Err(format!("{at}: {v} is not of type {types:?}"));
            }
        }
        if let Some(obj) = v.as_object() {
            let props = schema.get("properties").and_then(Value::as_object);
            for r in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    return Err(format!("{at}: required property {r} is missing"));
                }
            }
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.conforms(s, val, &format!("{at}.{k}"))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!("{at}: property {k} is not in the document"))
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
            for (i, val) in arr.iter().enumerate() {
                self.conforms(items, val, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    /// The operation's first documented 2xx status.
    fn success(op: &Value) -> StatusCode {
        let code = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .find(|k| k.starts_with('2'))
            .expect("a success status");
        StatusCode::from_u16(code.parse().unwrap()).unwrap()
    }

    fn lists(op: &Value, status: StatusCode) -> bool {
        !op["responses"][status.as_str()].is_null()
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str())?,
            Seg::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            Seg::Key(k) => cur.get(k.as_str())?,
            Seg::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

/// `doc_path` with every path parameter but `{id}` filled in with its documented example (a
/// parameter without one is a gap in the document).
fn fill_examples(doc: &Doc, method: &Method, doc_path: &str) -> String {
    let op = &doc.0["paths"][doc_path][method.as_str().to_lowercase()];
    let mut path = doc_path.to_string();
    for p in op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "path" && p["name"] != "id")
    {
        let name = p["name"].as_str().unwrap();
        let ex = p["example"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {doc_path}: path parameter {name} has no example"));
        path = path.replace(&format!("{{{name}}}"), ex);
    }
    path
}

/// Sends a request and checks the answer against the document.
async fn send(
    doc: &Doc,
    c: &Client,
    method: Method,
    doc_path: &str,
    id: Option<i64>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let filled = fill_examples(doc, &method, doc_path);
    let path = match id {
        Some(id) => filled.replace("{id}", &id.to_string()),
        None => filled,
    };
    let (status, v) = c.call(method.clone(), &path, body).await;
    doc.check_response(&method, doc_path, status, &v);
    (status, v)
}

/// The example of the create-record operation, which every other body operation builds on.
fn create_example(doc: &Doc) -> Value {
    let ex = doc.0["paths"]["/api/v1/records"]["post"]["requestBody"]["content"]
        ["application/json"]["example"]
        .clone();
    assert!(ex.is_object(), "POST /api/v1/records has a request example");
    ex
}

async fn fresh_record(doc: &Doc, c: &Client) -> (i64, i64) {
    let (st, v) = send(
        doc,
        c,
        Method::POST,
        "/api/v1/records",
        None,
        Some(&create_example(doc)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (
        v["id"].as_i64().unwrap(),
        v["meta"]["version"].as_i64().unwrap(),
    )
}

/// Sends the head of a request that declares a 2 MiB JSON body, and no body: the server must
/// answer from the declared length alone. Returns the status and the answer's body.
async fn declared_oversize(
    base: &str,
    method: &Method,
    path: &str,
    token: &str,
) -> (StatusCode, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sock.read_to_end(&mut buf),
    )
    .await
    .expect("answered without waiting for the body")
    .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
        body,
    )
}

/// A new intake from the document's example: (id, version).
async fn fresh_intake(doc: &Doc, c: &Client) -> (i64, i64) {
    let ex = doc.0["paths"]["/api/v1/intakes"]["post"]["requestBody"]["content"]
        ["application/json"]["example"]
        .clone();
    let (st, v) = send(doc, c, Method::POST, "/api/v1/intakes", None, Some(&ex)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (v["id"].as_i64().unwrap(), v["version"].as_i64().unwrap())
}

/// A pending transfer offered to `c`'s organisation by `peer`'s (of another prefecture), of a
/// record made from the document's example: its id.
async fn fresh_transfer(doc: &Doc, c: &Client, peer: &Client) -> i64 {
    let (rid, _) = fresh_record(doc, peer).await;
    let (_, me) = c.get("/api/v1/me").await;
    let to = me["org"]["id"].as_str().unwrap().to_string();
    let (st, v) = send(
        doc,
        peer,
        Method::POST,
        "/api/v1/records/{id}/transfers",
        Some(rid),
        Some(&json!({ "to_org_id": to })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

/// Where an operation's answer is read back, and where a request body's value shows there: a
/// record's groups sit at the top of its view, an intake's input under `input`, a safety
/// confirmation under `safety`, an offer's fields at the top of its transfer.
fn read_back(path: &str, loc: &[Seg]) -> (&'static str, Vec<Seg>) {
    if path.starts_with("/api/v1/transfers") || path.ends_with("/transfers") {
        return ("/api/v1/transfers/{id}", loc.to_vec());
    }
    if path.starts_with("/api/v1/intakes") {
        let mut at = loc.to_vec();
        if path == "/api/v1/intakes" {
            at.insert(0, Seg::Key("input".into()));
        } else if path.ends_with("/safety") {
            at.insert(0, Seg::Key("safety".into()));
        }
        return ("/api/v1/intakes/{id}", at);
    }
    let at = match loc.first() {
        Some(Seg::Key(k)) if k == "record" => loc[1..].to_vec(),
        _ => loc.to_vec(),
    };
    ("/api/v1/records/{id}", at)
}

/// Operations with a JSON request example: (method, path, operation, example).
fn body_operations(doc: &Doc) -> Vec<(Method, String, &Value, Value)> {
    doc.operations()
        .into_iter()
        .filter_map(|(m, p, op)| {
            let ex = &op["requestBody"]["content"]["application/json"]["example"];
            (!ex.is_null()).then(|| (m, p, op, ex.clone()))
        })
        .collect()
}

/// Sends `body` to a body operation: a fresh record for paths with an id, the record's current
/// version in a top-level `version`. Returns the status, the answer and the record id.
async fn send_body(
    doc: &Doc,
    c: &Client,
    peer: &Client,
    method: &Method,
    path: &str,
    mut body: Value,
) -> (StatusCode, Value, Option<i64>) {
    let mut id = None;
    if path.starts_with("/api/v1/transfers/{id}") {
        id = Some(fresh_transfer(doc, c, peer).await);
    } else if path.starts_with("/api/v1/intakes/{id}") {
        let (iid, version) = fresh_intake(doc, c).await;
        id = Some(iid);
        if let Some(v) = body.get_mut("version") {
            *v = json!(version);
        }
    } else if path.contains("{id}") {
        let (rid, version) = fresh_record(doc, c).await;
        id = Some(rid);
        if let Some(v) = body.get_mut("version") {
            *v = json!(version);
        }
    }
    let (st, v) = send(doc, c, method.clone(), path, id, Some(&body)).await;
    // An offer is read back as the transfer it made.
    let id = if path.ends_with("/transfers") {
        v["id"].as_i64()
    } else {
        id.or_else(|| v["id"].as_i64())
    };
    (st, v, id)
}

/// The values serde named as expected when it refused `bogus` there (`unknown variant …,
/// expected one of `a`, `b``), read from the server's 400 answer.
fn serde_expected(answer: &Value) -> Vec<String> {
    let msg = answer["message"].as_str().unwrap_or("");
    let Some((_, rest)) = msg.split_once("expected") else {
        return Vec::new();
    };
    rest.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

both_engines! {
    async fn every_enum_value_in_a_request_body_round_trips_and_none_is_missing(db) {
        let s = TestServer::start(db).await;
        let doc = Doc::fetch(&s).await;
        let c = s.login("cgc").await;
        let peer = s.login("osaka").await;
        let mut checked = 0;
        for (method, path, op, example) in body_operations(&doc) {
            if path.contains("/lists/") {
                // One body per operation and list: every_list_operation_on_every_list below.
                continue;
            }
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            let locations = doc.enum_locations(schema);
            // (Login and a decline's reason hold no code.)
            assert!(!locations.is_empty() || path == "/api/v1/auth/login" || path.ends_with("/decline"), "{method} {path}: no enum found");
            for (loc, values) in locations {
                let here = format!("{method} {path} {}", show(&loc));
                let mut base = example.clone();
                assert!(get_mut(&mut base, &loc).is_some(), "{here}: the example has no value there; give the example one so its enum is tested");
                let (read_path, read_at) = read_back(&path, &loc);
                for value in &values {
                    let mut body = base.clone();
                    *get_mut(&mut body, &loc).unwrap() = value.clone();
                    let (st, answer, id) = send_body(&doc, &c, &peer, &method, &path, body).await;
                    assert_eq!(st, Doc::success(op), "{here} = {value}: refused: {answer}");
                    let (st, read) = send(&doc, &c, Method::GET, read_path, id, None).await;
                    assert_eq!(st, StatusCode::OK, "{read}");
                    assert_eq!(get(&read, &read_at), Some(value), "{here} = {value}: read back differently: {read}");
                    checked += 1;
                }
                // Completeness: every value the server's deserialiser takes here is listed, or
                // refused by validation.
                let accepted_by_serde: Vec<Value> = if values.iter().all(Value::is_string) {
                    let mut body = base.clone();
                    *get_mut(&mut body, &loc).unwrap() = json!("__no_such_code__");
                    let (st, answer, _) = send_body(&doc, &c, &peer, &method, &path, body).await;
                    assert_eq!(st, StatusCode::BAD_REQUEST, "{here}: an unknown code is refused: {answer}");
                    let expected = serde_expected(&answer);
                    assert!(!expected.is_empty(), "{here}: the refusal names the codes: {answer}");
                    expected.into_iter().map(Value::String).collect()
                } else {
                    (-1..=12).map(|n| json!(n)).collect()
                };
                for value in accepted_by_serde.iter().filter(|v| !values.contains(v)) {
                    let mut body = base.clone();
                    *get_mut(&mut body, &loc).unwrap() = value.clone();
                    let (st, answer, _) = send_body(&doc, &c, &peer, &method, &path, body).await;
                    assert!(!st.is_success(), "{here}: the server accepts {value}, which the document does not list: {answer}");
                }
            }
        }
        assert!(checked > 50, "only {checked} enum values checked");
    }

    async fn every_enum_value_of_a_query_parameter_is_accepted(db) {
        let s = TestServer::start(db).await;
        let doc = Doc::fetch(&s).await;
        let c = s.login("cgc").await;
        fresh_record(&doc, &c).await;
        let mut checked = 0;
        for (method, path, op) in doc.operations() {
            for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap();
                for (_, values) in doc.enum_locations(&p["schema"]) {
                    for value in values {
                        let raw = value.as_str().map(str::to_string).unwrap_or(value.to_string());
                        // Search needs a name besides its filters.
                        let url = format!("{path}?{name}={raw}{}", if path.ends_with("/search") { "&q=テスト" } else { "" });
                        let (st, v) = c.call(method.clone(), &url, None).await;
                        doc.check_response(&method, &path, st, &v);
                        assert_eq!(st, Doc::success(op), "{method} {url}: {v}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 10, "only {checked} query values checked");
    }

    async fn every_example_is_accepted_with_the_documented_status(db) {
        let s = TestServer::start(db).await;
        let doc = Doc::fetch(&s).await;
        let c = s.login("cgc").await;
        let peer = s.login("osaka").await;
        let ops = body_operations(&doc);
        assert!(ops.len() >= 3, "create, update and restrictions have examples");
        for (method, path, op, example) in ops {
            let (st, answer, _) = send_body(&doc, &c, &peer, &method, &path, example).await;
            assert_eq!(st, Doc::success(op), "{method} {path}: the example is refused: {answer}");
        }
        // Examples of parameters, if any, are accepted too.
        let (id, _) = fresh_record(&doc, &c).await;
        for (method, path, op) in doc.operations() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let Some(ex) = p.get("example") else { continue };
                if p["in"] == "path" {
                    continue; // in the path of every request above (fill_examples)
                }
                let name = p["name"].as_str().unwrap();
                let url = match p["in"].as_str() {
                    Some("query") => format!("{path}?{name}={}", ex.as_str().map(str::to_string).unwrap_or(ex.to_string())),
                    _ => path.clone(),
                };
                let (st, v) = c.call(method.clone(), &url.replace("{id}", &id.to_string()), None).await;
                assert_eq!(st, Doc::success(op), "{method} {url}: {v}");
            }
        }
    }

    async fn refused_requests_get_a_status_the_document_lists(db) {
        let s = TestServer::start(db).await;
        let doc = Doc::fetch(&s).await;
        let c = s.login("cgc").await;
        let (id, _) = fresh_record(&doc, &c).await;
        let anon = Client { token: String::new(), ..c.clone() };
        let mut tried = 0;
        for (method, path, op) in doc.operations() {
            if path.ends_with("/stream") {
                continue; // a 200 here is an endless stream; its refusals are below
            }
            let filled = fill_examples(&doc, &method, &path);
            let with_id = |raw: &str| filled.replace("{id}", raw);
            let real = with_id(&id.to_string());
            let has_body = !op["requestBody"].is_null();
            let mut refused: Vec<(String, reqwest::RequestBuilder)> = Vec::new();
            let public = op["security"].as_array().is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())));
            if !public {
                refused.push(("no token".into(), anon.http.request(method.clone(), format!("{}{real}", c.base))));
                refused.push(("unknown token".into(), c.http.request(method.clone(), format!("{}{real}", c.base)).bearer_auth("nope")));
            }
            if path.contains("{id}") {
                // `+{id}` and `{id}.0` name a record that exists, in a form the document does not allow.
                for bad in ["abc".to_string(), "0".into(), "-1".into(), format!("+{id}"), format!("{id}.0"), format!("0{id}x"), "99999999999999999999".into()] {
                    refused.push((format!("id {bad}"), c.req(method.clone(), &with_id(&bad)).header("content-type", "application/json").body("{}")));
                }
                refused.push(("no such id".into(), c.req(method.clone(), &with_id("999999999")).header("content-type", "application/json").body("{}")));
            }
            if has_body {
                refused.push(("text/plain".into(), c.req(method.clone(), &real).header("content-type", "text/plain").body("{}")));
                refused.push(("malformed JSON".into(), c.req(method.clone(), &real).header("content-type", "application/json").body("{\"core\":")));
                refused.push(("unknown field".into(), c.req(method.clone(), &real).json(&json!({ "no_such_field": 1 }))));
                refused.push(("a JSON array".into(), c.req(method.clone(), &real).json(&json!([]))));
                // A body over the limit is refused from its declared length: sent as headers
                // only, since writing the body races the server closing the connection.
                let (st, text) = declared_oversize(&c.base, &method, &real, &c.token).await;
                assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path} (too large): {text}");
                assert!(Doc::lists(op, st), "{method} {path} (too large) answered {st}, which the document does not list");
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    doc.check_response(&method, &path, st, &v);
                }
                tried += 1;
            }
            if op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query")) {
                refused.push(("unknown or bad query".into(), c.req(method.clone(), &format!("{real}?limit=x&after=x&page=0&no_such_param=1"))));
            }
            for (what, req) in refused {
                let resp = req.send().await.unwrap();
                let st = resp.status();
                let text = resp.text().await.unwrap();
                assert!(!st.is_success(), "{method} {path} ({what}) was accepted: {text}");
                assert!(Doc::lists(op, st), "{method} {path} ({what}) answered {st}, which the document does not list: {text}");
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    doc.check_response(&method, &path, st, &v);
                }
                tried += 1;
            }
        }
        // A record body the server refuses in validation.
        let op = &doc.0["paths"]["/api/v1/records"]["post"];
        let (st, v) = c.post("/api/v1/records", &json!({})).await;
        assert!(Doc::lists(op, st) && st == StatusCode::UNPROCESSABLE_ENTITY, "{st} {v}");
        doc.check_response(&Method::POST, "/api/v1/records", st, &v);
        // The event stream's refusals.
        let op = &doc.0["paths"]["/api/v1/notifications/stream"]["get"];
        let (st, _) = anon.get("/api/v1/notifications/stream").await;
        assert!(Doc::lists(op, st), "stream without a token: {st}");
        let (st, _) = c.get("/api/v1/notifications/stream?last_event_id=x").await;
        assert!(Doc::lists(op, st) && st == StatusCode::BAD_REQUEST, "stream with a bad id: {st}");
        assert!(tried > 60, "only {tried} refusals tried");
    }

    async fn every_list_operation_on_every_list(db) {
        // The lists the path names and the operations the body names, both read from the
        // document: each operation on each list is accepted, does what it says, and answers
        // as documented; a list the document does not name is refused by name.
        let s = TestServer::start(db).await;
        let doc = Doc::fetch(&s).await;
        let c = s.login("cgc").await;
        let path = "/api/v1/records/{id}/lists/{list}";
        let op = &doc.0["paths"][path]["post"];
        let param = op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "list").unwrap();
        let lists: Vec<String> = doc.resolve(&param["schema"])["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(lists.len(), 5, "{lists:?}");
        let body_schema = doc.resolve(&op["requestBody"]["content"]["application/json"]["schema"]);
        // (operation, its required properties), in the document's order.
        let ops: Vec<(String, Vec<String>)> = body_schema["oneOf"].as_array().unwrap().iter().map(|b| {
            let b = doc.resolve(b);
            let name = b["properties"]["op"]["enum"][0].as_str().unwrap().to_string();
            let req = b["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
            (name, req)
        }).collect();
        assert_eq!(ops.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["add", "change", "remove", "move"]);
        let example = create_example(&doc);
        // Where a list named `name` is in a record: the group holding a key of that name.
        let group_of = |name: &str| ["core", "family", "casework", "admin"].into_iter().find(|g| example[*g].get(name).is_some_and(Value::is_array)).unwrap_or_else(|| panic!("{name} is in no group of the record"));
        let mut tried = 0;
        for list in &lists {
            let (id, _) = fresh_record(&doc, &c).await;
            let group = group_of(list);
            let first = example[group][list][0].clone();
            assert!(first.is_object(), "the example record has an entry of {list}, so it is tested");
            let url = path.replace("{list}", list);
            let entries = |v: &Value| v[group][list].as_array().unwrap().clone();
            let mut len = 1;
            for (name, required) in &ops {
                let (_, now) = send(&doc, &c, Method::GET, "/api/v1/records/{id}", Some(id), None).await;
                let now = entries(&now);
                let mut body = json!({ "op": name });
                for r in required.iter().filter(|r| *r != "op") {
                    body[r] = match r.as_str() {
                        "item" => first.clone(),
                        "index" => json!(len - 1),
                        "was" => now[len - 1].clone(),
                        "to" => json!(0),
                        other => panic!("{name}: no value for {other}"),
                    };
                }
                let (st, v) = c.post(&url.replace("{id}", &id.to_string()), &body).await;
                doc.check_response(&Method::POST, path, st, &v);
                assert_eq!(st, Doc::success(op), "{list} {name}: {v}");
                len = match name.as_str() { "add" => len + 1, "remove" => len - 1, _ => len };
                assert_eq!(entries(&v).len(), len, "{list} {name}: {v}");
                tried += 1;
            }
        }
        assert_eq!(tried, 20);
        let (id, _) = fresh_record(&doc, &c).await;
        let (st, v) = c.post(&format!("/api/v1/records/{id}/lists/no_such_list"), &json!({ "op": "add", "item": {} })).await;
        doc.check_response(&Method::POST, path, st, &v);
        assert_eq!((st, v["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("list")), "{v}");
    }

    async fn answers_for_every_viewer_conform_to_the_document(db) {
        let s = TestServer::start(db).await;
        let doc = Doc::fetch(&s).await;
        let cgc = s.login("cgc").await;
        let (id, _) = fresh_record(&doc, &cgc).await;
        // Restricted fields give `withheld` markers to partners.
        let (st, v) = send(&doc, &cgc, Method::PUT, "/api/v1/records/{id}/restrictions", Some(id), Some(&json!({
            "version": 1, "restrictions": { "groups": ["casework"], "fields": ["core.address", "admin.intake_reports"], "reason": "DV被害のため住所非開示" }
        }))).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let ex = create_example(&doc);
        let name = ex["core"]["child_name"]["family"].as_str().unwrap().to_string();
        for login in ["cgc", "cgc2", "muni", "osaka", "ministry"] {
            let c = if login == "cgc" { cgc.clone() } else { s.login(login).await };
            for path in ["/api/v1/me", "/api/v1/records", "/api/v1/notifications"] {
                let (st, v) = send(&doc, &c, Method::GET, path, None, None).await;
                assert!(st.is_success() || st == StatusCode::FORBIDDEN, "{login} {path}: {st} {v}");
            }
            for path in ["/api/v1/records/{id}", "/api/v1/records/{id}/versions", "/api/v1/records/{id}/views"] {
                send(&doc, &c, Method::GET, path, Some(id), None).await;
            }
            // A list operation: the owner's view for the owner, refusals for everyone else.
            let path = "/api/v1/records/{id}/lists/{list}";
            let ex = doc.0["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"].clone();
            let (st, v) = send(&doc, &c, Method::POST, path, Some(id), Some(&ex)).await;
            assert_eq!(st.is_success(), login == "cgc", "{login}: {st} {v}");
            let (st, v) = c.get(&format!("/api/v1/search?q={name}")).await;
            doc.check_response(&Method::GET, "/api/v1/search", st, &v);
        }

        // Transfers: pending, confirmed, declined and withdrawn, read by every viewer (the
        // parties, a partner of the origin, an outside centre, the ministry); every answer,
        // refusals included, as documented.
        let osaka = s.login("osaka").await;
        let mut transfers = Vec::new();
        for _ in 0..4 {
            let (rid, _) = fresh_record(&doc, &cgc).await;
            let (st, v) = send(&doc, &cgc, Method::POST, "/api/v1/records/{id}/transfers", Some(rid), Some(&json!({
                "to_org_id": "cgc-27-01", "message": "転居のため", "withhold": ["casework.findings", "core.address"]
            }))).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            transfers.push(v["id"].as_i64().unwrap());
        }
        let steps = [
            (&osaka, "/api/v1/transfers/{id}/confirm", None),
            (&osaka, "/api/v1/transfers/{id}/decline", Some(json!({ "reason": "管轄外のため" }))),
            (&cgc, "/api/v1/transfers/{id}/withdraw", None),
        ];
        for (t, (c, path, body)) in transfers.iter().zip(&steps) {
            let (st, v) = send(&doc, c, Method::POST, path, Some(*t), body.as_ref()).await;
            assert_eq!(st, StatusCode::OK, "{path}: {v}");
            // Again: no longer pending.
            let (st, v) = send(&doc, c, Method::POST, path, Some(*t), body.as_ref()).await;
            assert_eq!(st, StatusCode::CONFLICT, "{path}: {v}");
        }
        for login in ["cgc", "cgc2", "muni", "osaka", "osaka-muni", "ministry"] {
            let c = s.login(login).await;
            for q in ["", "?box=outgoing", "?box=incoming&status=pending"] {
                let (st, v) = c.get(&format!("/api/v1/transfers{q}")).await;
                doc.check_response(&Method::GET, "/api/v1/transfers", st, &v);
                assert!(st.is_success() || login == "ministry", "{login} {q}: {st} {v}");
            }
            for t in &transfers {
                let (st, v) = send(&doc, &c, Method::GET, "/api/v1/transfers/{id}", Some(*t), None).await;
                assert_eq!(st.is_success(), matches!(login, "cgc" | "osaka"), "{login}: {st} {v}");
                if let Some(rec) = v["records"][0]["record"].as_object() {
                    // The destination: the transfer tier while pending and after confirming;
                    // after a decline or a withdrawal, its own (an outside centre).
                    let want = match (login, v["status"].as_str()) {
                        ("cgc", _) => "owner",
                        (_, Some("pending" | "confirmed")) => "transfer",
                        _ => "outside",
                    };
                    assert_eq!(rec.get("tier").and_then(Value::as_str), Some(want), "{login}: {v}");
                }
                let rid = v["records"][0]["record_id"].as_i64().unwrap_or(1);
                send(&doc, &c, Method::GET, "/api/v1/records/{id}", Some(rid), None).await;
                send(&doc, &c, Method::GET, "/api/v1/records/{id}/versions", Some(rid), None).await;
                if let Some(n) = v["records"][0]["new_record_id"].as_i64() {
                    send(&doc, &c, Method::GET, "/api/v1/records/{id}", Some(n), None).await;
                }
            }
            send(&doc, &c, Method::GET, "/api/v1/notifications", None, None).await;
        }
    }
}
