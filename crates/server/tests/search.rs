//! Nationwide person search through the API on both engines: every query form, the refusals,
//! grouping, the audit entries, no address in any response, and the index kept by writes being
//! the index a rebuild computes.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

/// A record body with the given child, birth, sex and guardian; `tag` marks the address.
fn person(
    lgcode: &str,
    child: (&str, &str, &str, &str),
    sex: u8,
    birth: &str,
    guardian: (&str, &str, &str, &str),
    tag: &str,
) -> Value {
    let mut b = record_json(lgcode, tag);
    b["core"]["child_name"] = json!({ "family": child.0, "given": child.1, "family_kana": child.2, "given_kana": child.3 });
    b["core"]["sex"] = json!(sex);
    b["core"]["birth_date"] = json!({ "date": birth });
    b["core"]["guardians"] = json!([{ "name": { "family": guardian.0, "given": guardian.1, "family_kana": guardian.2, "given_kana": guardian.3 }, "relationship": "father" }]);
    b
}

async fn search(c: &Client, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let url = reqwest::Url::parse_with_params("http://query.invalid/api/v1/search", params)
        .expect("a valid query");
    c.get(&format!("{}?{}", url.path(), url.query().unwrap_or("")))
        .await
}

/// Record ids of all hits, in order.
fn ids(v: &Value) -> Vec<i64> {
    v["groups"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .flat_map(|g| {
            g["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["record_id"].as_i64().unwrap())
        })
        .collect()
}

fn first_reasons(v: &Value) -> Vec<String> {
    v["groups"][0]["hits"][0]["reasons"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

struct Fixture {
    srv: TestServer,
    cgc: Client,
    takahashi: i64,
    takahashi_osaka: i64,
    yamazaki: i64,
    watanabe: i64,
    oono: i64,
    saito: i64,
}

async fn fixture(db: TestDb) -> Fixture {
    let srv = TestServer::start(db).await;
    let cgc = srv.login("cgc").await;
    let osaka = srv.login("osaka").await;
    let takahashi = cgc
        .create(&person(
            "131016",
            ("髙橋", "花子", "タカハシ", "ハナコ"),
            2,
            "2015-04-01",
            ("髙橋", "太郎", "タカハシ", "タロウ"),
            "T1",
        ))
        .await;
    // The same child registered in Osaka, written with the common 高.
    let takahashi_osaka = osaka
        .create(&person(
            "271004",
            ("高橋", "花子", "タカハシ", "ハナコ"),
            2,
            "2015-04-01",
            ("高橋", "太郎", "タカハシ", "タロウ"),
            "T2",
        ))
        .await;
    let yamazaki = cgc
        .create(&person(
            "131016",
            ("山\u{FA11}", "翔", "ヤマザキ", "ショウ"),
            1,
            "2016-05-05",
            ("山\u{FA11}", "健", "ヤマザキ", "ケン"),
            "Y1",
        ))
        .await;
    let watanabe = cgc
        .create(&person(
            "131024",
            ("渡邉\u{E0100}", "さくら", "わたなべ", "さくら"),
            2,
            "2014-01-10",
            ("渡邉", "誠", "ワタナベ", "マコト"),
            "W1",
        ))
        .await;
    let oono = cgc
        .create(&person(
            "131016",
            ("大野", "陽菜", "オオノ", "ヒナ"),
            2,
            "2017-07-07",
            ("大野", "一郎", "オオノ", "イチロウ"),
            "O1",
        ))
        .await;
    let saito = cgc
        .create(&person(
            "131016",
            ("齋藤", "蓮", "ｻｲﾄｳ", "ﾚﾝ"),
            1,
            "2013-03-03",
            ("齋藤", "直子", "サイトウ", "ナオコ"),
            "S1",
        ))
        .await;
    Fixture {
        srv,
        cgc,
        takahashi,
        takahashi_osaka,
        yamazaki,
        watanabe,
        oono,
        saito,
    }
}

both_engines! {
    async fn every_query_form_finds_the_child(db) {
        let f = fixture(db).await;
        let c = &f.cgc;
        let top = |v: &Value| ids(v).first().copied();

        // Full name as registered: exact first, the Osaka record (高) grouped with it.
        let (s, v) = search(c, &[("q", "髙橋花子")]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["groups"][0]["hits"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(top(&v), Some(f.takahashi));
        assert!(ids(&v).contains(&f.takahashi_osaka));
        assert_eq!(first_reasons(&v), vec!["exact_name"]);
        assert_eq!(v["address_withheld"], true);
        // The tier each hit would open with: owner here, outside for Osaka's record.
        assert_eq!(v["groups"][0]["hits"][0]["tier"], "owner");
        assert_eq!(v["groups"][0]["hits"][1]["tier"], "outside");
        assert_eq!(v["groups"][0]["hits"][1]["owner"]["org_id"], "cgc-27-01");

        // Variant kanji, with a space and full-width space.
        let (_, v) = search(c, &[("q", "高橋　花子")]).await;
        assert!(ids(&v).contains(&f.takahashi), "{v}");
        let h = v["groups"][0]["hits"].as_array().unwrap();
        let reasons_of = |id: i64| h.iter().find(|x| x["record_id"] == id).map(|x| x["reasons"].to_string()).unwrap();
        assert!(reasons_of(f.takahashi).contains("variant_kanji"));
        assert!(reasons_of(f.takahashi_osaka).contains("exact_name"));

        // Hiragana query against the katakana reading; half-width kana; swapped order.
        for q in ["たかはし はなこ", "ﾀｶﾊｼﾊﾅｺ", "タカハシハナコ"] {
            let (_, v) = search(c, &[("q", q)]).await;
            assert!(ids(&v).contains(&f.takahashi), "{q}: {v}");
            assert!(first_reasons(&v).contains(&"same_reading".to_string()), "{q}: {v}");
        }
        let (_, v) = search(c, &[("q", "花子 髙橋")]).await;
        assert_eq!(top(&v), Some(f.takahashi), "{v}");
        assert!(first_reasons(&v).contains(&"swapped_names".to_string()));

        // Part of a name: family only, given only, the reading's middle, the compatibility
        // ideograph 﨑 found by 崎.
        let (_, v) = search(c, &[("q", "山崎")]).await;
        assert_eq!(ids(&v), vec![f.yamazaki], "{v}");
        let (_, v) = search(c, &[("q", "ザキ")]).await;
        assert_eq!(ids(&v), vec![f.yamazaki], "{v}");
        assert!(first_reasons(&v).contains(&"part_of_name".to_string()));
        let (_, v) = search(c, &[("q", "さくら")]).await;
        assert_eq!(ids(&v), vec![f.watanabe], "{v}");
        // 渡邉 + IVS registered; 渡辺 and 渡邊 typed.
        for q in ["渡辺", "渡邊 さくら", "渡辺さくら"] {
            let (_, v) = search(c, &[("q", q)]).await;
            assert_eq!(ids(&v), vec![f.watanabe], "{q}: {v}");
        }
        // 齋藤 registered with a half-width reading; 斎藤 and さいとう typed.
        for q in ["斎藤", "さいとう れん", "斎藤蓮"] {
            let (_, v) = search(c, &[("q", q)]).await;
            assert_eq!(ids(&v), vec![f.saito], "{q}: {v}");
        }
        // Long vowels: close (similar reading), not equal.
        let (_, v) = search(c, &[("q", "オーノヒナ")]).await;
        assert_eq!(ids(&v), vec![f.oono], "{v}");
        assert!(first_reasons(&v).contains(&"similar_reading".to_string()), "{v}");
        let (_, v) = search(c, &[("q", "オノ ヒナ")]).await;
        assert_eq!(ids(&v), vec![f.oono], "{v}");
        // One typo.
        let (_, v) = search(c, &[("q", "タカハシハナゴ")]).await;
        assert!(ids(&v).contains(&f.takahashi), "{v}");
        assert!(first_reasons(&v).contains(&"one_edit".to_string()), "{v}");
        // A typo in the family name of an unspaced reading: found through the intact given name.
        for (q, b) in [("タカバシハナコ", None), ("タカバシハナコ", Some("2015-04-01")), ("ワタネベサクラ", None)] {
            let mut p = vec![("q", q)];
            p.extend(b.map(|b| ("birth", b)));
            let (_, v) = search(c, &p).await;
            assert!(!ids(&v).is_empty(), "{q}: {v}");
            assert!(first_reasons(&v).contains(&"one_edit".to_string()), "{q}: {v}");
        }
        // Nobody of that name.
        let (_, v) = search(c, &[("q", "鈴木一郎")]).await;
        assert!(ids(&v).is_empty(), "{v}");
        assert_eq!(v["total_hits"], 0);

        // Guardian name, alone or with the child's.
        let (_, v) = search(c, &[("guardian", "高橋太郎")]).await;
        assert!(ids(&v).contains(&f.takahashi) && ids(&v).contains(&f.takahashi_osaka), "{v}");
        assert!(first_reasons(&v).contains(&"guardian_name".to_string()));
        let (_, v) = search(c, &[("guardian", "マコト")]).await;
        assert_eq!(ids(&v), vec![f.watanabe], "{v}");
        let (_, v) = search(c, &[("q", "大野"), ("guardian", "大野一郎")]).await;
        assert_eq!(ids(&v), vec![f.oono], "{v}");
        let (_, v) = search(c, &[("q", "大野"), ("guardian", "渡辺誠")]).await;
        assert!(ids(&v).is_empty(), "name and guardian must both match: {v}");

        // Birth date: exact, era, year, year-month, range, near; and sex.
        for b in ["2015-04-01", "H27.4.1", "平成27年4月1日", "2015", "平成27年", "2015-04", "2014..2016", "H26..H27"] {
            let (s, v) = search(c, &[("q", "高橋"), ("birth", b)]).await;
            assert_eq!(s, StatusCode::OK, "{b}: {v}");
            assert!(ids(&v).contains(&f.takahashi), "{b}: {v}");
            assert!(v["groups"][0]["hits"][0]["reasons"].to_string().contains("birth_date_exact"), "{b}: {v}");
        }
        let (_, v) = search(c, &[("q", "高橋"), ("birth", "2015-04-20")]).await;
        assert!(ids(&v).contains(&f.takahashi), "{v}");
        assert!(first_reasons(&v).contains(&"birth_date_near".to_string()), "{v}");
        for b in ["2019", "2016..2018", "令和元年"] {
            let (_, v) = search(c, &[("q", "高橋"), ("birth", b)]).await;
            assert!(ids(&v).is_empty(), "{b}: {v}");
        }
        let (_, v) = search(c, &[("q", "高橋"), ("sex", "1")]).await;
        assert!(ids(&v).is_empty(), "{v}");
        let (_, v) = search(c, &[("q", "高橋"), ("sex", "2"), ("birth", "H27"), ("guardian", "タロウ")]).await;
        assert_eq!(ids(&v).len(), 2, "{v}");
        assert!(first_reasons(&v).contains(&"sex_matches".to_string()));
        // One kanji is enough with a birth date.
        let (s, v) = search(c, &[("q", "蓮"), ("birth", "2013-03-03")]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(ids(&v), vec![f.saito]);

        // A municipality searches nationwide too; the tier says what it could open.
        let muni_other = f.srv.login("muni-other").await;
        let (s, v) = search(&muni_other, &[("q", "高橋花子")]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(ids(&v).len(), 2);
        assert!(v["groups"][0]["hits"].as_array().unwrap().iter().all(|h| h["tier"] == "none"), "{v}");

        // Paging: one group here, page 2 is empty.
        let (_, v) = search(c, &[("q", "高橋"), ("page", "2")]).await;
        assert_eq!(v["groups"].as_array().unwrap().len(), 0);
        assert_eq!(v["page"], 2);
        assert_eq!(v["has_more"], false);
    }

    async fn each_normalisation_rule_through_the_api(db) {
        let srv = TestServer::start(db).await;
        let c = srv.login("cgc").await;
        let g = ("山本", "一", "ヤマモト", "ハジメ");
        let hamada = c.create(&person("131016", ("濵田", "結衣", "ハマダ", "ユイ"), 2, "2016-02-02", g, "N1")).await;
        let yoshida = c.create(&person("131016", ("𠮷田", "優", "ヨシダ", "ユウ"), 1, "2012-12-12", g, "N2")).await;
        let sawaguchi = c.create(&person("131016", ("澤口", "隆", "サワグチ", "タカシ"), 1, "2011-01-11", g, "N3")).await;
        let ichigaya = c.create(&person("131016", ("一ヶ谷", "葵", "イチガヤ", "アオイ"), 2, "2019-05-03", g, "N4")).await;
        let sasaki = c.create(&person("131016", ("佐々木", "ヴィクトル", "ササキ", "ヴィクトル"), 1, "2014-06-06", g, "N5")).await;
        let chijiwa = c.create(&person("131016", ("千々和", "千鶴", "チヂワ", "チヅル"), 2, "2013-03-13", g, "N6")).await;
        let found = |v: &Value, id: i64, reason: &str| {
            ids(v).first() == Some(&id) && first_reasons(v).contains(&reason.to_string())
        };
        for (q, id, reason) in [
            // Kanji variants folded (MJ table): 濵/濱→浜, 𠮷→吉, 澤→沢.
            ("浜田結衣", hamada, "variant_kanji"),
            ("濱田 結衣", hamada, "variant_kanji"),
            ("吉田優", yoshida, "variant_kanji"),
            ("沢口隆", sawaguchi, "variant_kanji"),
            // IVS and SVS typed in the query are dropped.
            ("濵\u{E0100}田結衣", hamada, "exact_name"),
            ("𠮷\u{FE00}田　優", yoshida, "exact_name"),
            // A compatibility ideograph NFKC decomposes (U+F9DC → 隆), and full-width space.
            ("澤口\u{F9DC}", sawaguchi, "exact_name"),
            // Small ヶ/ヵ in a written name.
            ("一ケ谷葵", ichigaya, "variant_kanji"),
            ("一ヵ谷 葵", ichigaya, "variant_kanji"),
            // Half-width kana with voiced marks; hiragana.
            ("ﾊﾏﾀﾞ ﾕｲ", hamada, "same_reading"),
            ("さわぐち たかし", sawaguchi, "same_reading"),
            // Small ィ typed large, ヂ/ジ and ヅ/ズ: close (similar), not equal; ヴィ/ビ: a loanword
            // spelling, close too.
            ("ささき ゔいくとる", sasaki, "similar_reading"),
            ("ささき びくとる", sasaki, "loanword_kana"),
            ("チジワ チズル", chijiwa, "similar_reading"),
            ("チヂワ チヅル", chijiwa, "same_reading"),
        ] {
            let (s, v) = search(&c, &[("q", q)]).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            assert!(found(&v, id, reason), "{q} should find {id} as {reason}: {v}");
        }
        // 令和 dates, long and short, and 令和 as a year.
        for b in ["令和元年5月3日", "R1.5.3", "令和元年", "R1"] {
            let (s, v) = search(&c, &[("q", "一ヶ谷"), ("birth", b)]).await;
            assert_eq!(s, StatusCode::OK, "{b}: {v}");
            assert!(found(&v, ichigaya, "birth_date_exact"), "{b}: {v}");
        }
    }

    async fn refusals_are_clear_and_audited_searches_hold_no_names(db) {
        let f = fixture(db).await;
        let c = &f.cgc;
        for (params, field) in [
            (vec![], "q"),
            (vec![("q", "")], "q"),
            (vec![("q", " 　")], "q"),
            (vec![("q", "山")], "q"),
            (vec![("q", "ﾔ")], "q"),
            (vec![("guardian", "太")], "guardian"),
            (vec![("q", "山田"), ("birth", "あした")], "birth"),
            (vec![("q", "山田"), ("birth", "R7.2.30")], "birth"),
            (vec![("q", "山田"), ("birth", "2020..2010")], "birth"),
            (vec![("q", "山田"), ("sex", "3")], "sex"),
            (vec![("q", "山田"), ("page", "0")], "page"),
            (vec![("q", "山田"), ("address", "東京")], "address"),
            (vec![("birth", "2015-04-01")], "q"),
        ] {
            let (s, v) = search(c, &params).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{params:?}: {v}");
            assert_eq!(v["fields"][0]["field"], field, "{params:?}: {v}");
            let msg = v["message"].as_str().unwrap();
            assert!(msg.chars().any(|ch| ('\u{3040}'..='\u{30FF}').contains(&ch)), "Japanese message: {msg}");
        }
        let (s, v) = search(c, &[("q", &"あ".repeat(100))]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        // Operator and ministry do not search people.
        for login in ["operator", "ministry"] {
            let u = f.srv.login(login).await;
            let (s, v) = search(&u, &[("q", "高橋花子")]).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{login}: {v}");
        }
        // Unauthenticated.
        let r = f.srv.http.get(f.srv.url("/api/v1/search?q=abc")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

        // Audit: each accepted search is one entry with the shape and the hit count, no names.
        let before = f.srv.state().store.audit_entries(13, 0, 100_000).await.unwrap().len();
        let (_, first) = search(c, &[("q", "髙橋 花子"), ("birth", "H27"), ("sex", "2")]).await;
        search(c, &[("guardian", "ワタナベマコト")]).await;
        let entries = f.srv.state().store.audit_entries(13, 0, 100_000).await.unwrap();
        let searches: Vec<_> = entries[before..].iter().filter(|e| e.action == "search.performed").collect();
        assert_eq!(searches.len(), 2, "{entries:?}");
        let d: Value = serde_json::from_str(&searches[0].detail).unwrap();
        assert_eq!(d["q"]["len"], 4);
        assert_eq!(d["q"]["parts"], 2);
        assert_eq!(d["birth"], "year");
        assert_eq!(d["sex"], true);
        assert_eq!(d["hits"], 2);
        // The records the page showed, by id: the same ones the answer carried.
        let mut shown: Vec<i64> = first["groups"].as_array().unwrap().iter().flat_map(|g| g["hits"].as_array().unwrap().iter().map(|h| h["record_id"].as_i64().unwrap())).collect();
        let mut logged: Vec<i64> = d["records"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        shown.sort_unstable();
        logged.sort_unstable();
        assert_eq!((logged.len(), &logged), (2, &shown));
        assert_eq!(searches[0].actor_org, "cgc-13-01");
        let d: Value = serde_json::from_str(&searches[1].detail).unwrap();
        assert_eq!(d["guardian"]["script"], "kana");
        assert_eq!(d["hits"], 1);
        for e in &searches {
            for name in ["髙橋", "高橋", "花子", "ワタナベ", "マコト", "2015", "H27"] {
                assert!(!e.detail.contains(name), "{name} in {}", e.detail);
            }
        }
        // The chain still verifies with the search entries in it.
        tsunagu_server::audit::verify(f.srv.state().store.as_ref()).await.unwrap().unwrap();
    }

    async fn no_address_in_any_search_response(db) {
        let srv = TestServer::start(db).await;
        let cgc = srv.login("cgc").await;
        // A generated population, plus records whose every address part is a unique marker.
        let dir = srv.state().orgs.clone();
        tsunagu_server::seed::seed_demo_records(
            srv.state().store.as_ref(), &dir, 150, 7, srv.state().clock.today(), srv.state().clock.now(),
        ).await.unwrap();
        for i in 0..12 {
            let mut b = record_json(["131016", "131024", "271004"][i % 3], &format!("M{i}"));
            b["core"]["address"]["street"] = json!(format!("住所マーカー{i}番地 ADDRMARK{i}"));
            b["core"]["address"]["postal_code"] = json!(format!("9{:02}-7{:03}", i, i));
            cgc.create(&b).await;
        }
        let snap = srv.state().store.search_index_snapshot().await.unwrap();
        let mut forbidden: Vec<(String, String)> = Vec::new();
        let mut queries: Vec<String> = Vec::new();
        for (_, id, ..) in &snap.docs {
            let r = srv.state().store.get_record(*id).await.unwrap().unwrap();
            let a = &r.body.core.address;
            forbidden.push((a.street.clone(), r.owner_org.clone()));
            forbidden.push((a.postal_code.clone(), r.owner_org.clone()));
            forbidden.push((a.municipality_code.clone(), r.owner_org.clone()));
            let n = &r.body.core.child_name;
            queries.push(format!("{}{}", n.family, n.given));
            queries.push(n.family_kana.clone().unwrap_or_default());
            queries.push(n.given.clone());
            // Queries that contain the address: nothing may match through it.
            queries.push(a.street.clone());
            queries.push(a.postal_code.clone());
            queries.push(format!("{} {}", n.family, a.street));
        }
        queries.sort();
        queries.dedup();
        let users = [cgc.clone(), srv.login("muni-other").await, srv.login("osaka").await];
        let mut scanned = 0;
        for (qi, q) in queries.iter().enumerate() {
            let u = &users[qi % users.len()];
            let (s, v) = search(u, &[("q", q)]).await;
            if s != StatusCode::OK {
                assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
                continue;
            }
            let text = v.to_string();
            assert!(!text.contains("\"address\""), "{q}: {text}");
            assert!(!text.contains("street") && !text.contains("postal"), "{q}: {text}");
            // Digits of municipality and postal codes legitimately appear in owners' ids
            // (muni-131016) and record ids: scan the hits without those.
            let mut bare = v.clone();
            for g in bare["groups"].as_array_mut().unwrap() {
                for h in g["hits"].as_array_mut().unwrap() {
                    let h = h.as_object_mut().unwrap();
                    h.remove("owner");
                    h.remove("record_id");
                }
            }
            let bare = bare.to_string();
            for (m, _) in &forbidden {
                assert!(!bare.contains(m.as_str()), "address part {m} in the answer to {q}: {text}");
            }
            if q.contains("マーカー") || q.contains('-') && q.chars().all(|c| c.is_ascii_digit() || c == '-') {
                assert_eq!(v["total_hits"], 0, "an address must match nothing: {q}: {text}");
            }
            scanned += 1;
        }
        assert!(scanned > 300, "only {scanned} responses scanned");
        // Street markers as a query: nothing.
        let (_, v) = search(&cgc, &[("q", "ADDRMARK3")]).await;
        assert_eq!(v["total_hits"], 0);
        let (_, v) = search(&cgc, &[("q", "住所マーカー")]).await;
        assert_eq!(v["total_hits"], 0);
    }

    async fn index_kept_by_writes_equals_a_rebuilt_index(db) {
        let srv = TestServer::start(db).await;
        let cgc = srv.login("cgc").await;
        let store = srv.state().store.clone();
        let dir = srv.state().orgs.clone();
        tsunagu_server::seed::seed_demo_records(store.as_ref(), &dir, 80, 11, srv.state().clock.today(), srv.state().clock.now()).await.unwrap();
        let id = cgc.create(&person("131016", ("髙橋", "花子", "タカハシ", "ハナコ"), 2, "2015-04-01", ("髙橋", "太郎", "タカハシ", "タロウ"), "X")).await;
        // Rename the child and change the guardian: old keys must go, new ones come.
        let mut body = person("131016", ("濱田", "美咲", "ハマダ", "ミサキ"), 2, "2015-04-02", ("濱田", "修", "ハマダ", "オサム"), "X");
        body["admin"]["serious_case"] = json!(true);
        let (s, v) = cgc.put(&format!("/api/v1/records/{id}"), &json!({ "version": 1, "record": body })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // An update that changes no searched field leaves the index as it is.
        body["casework"]["findings"] = json!("変更");
        let (s, v) = cgc.put(&format!("/api/v1/records/{id}"), &json!({ "version": 2, "record": body })).await;
        assert_eq!(s, StatusCode::OK, "{v}");

        let (_, v) = search(&cgc, &[("q", "髙橋花子")]).await;
        assert!(!ids(&v).contains(&id), "old name still found: {v}");
        let (_, v) = search(&cgc, &[("q", "浜田美咲")]).await;
        assert_eq!(ids(&v), vec![id], "{v}");
        let (_, v) = search(&cgc, &[("guardian", "ハマダオサム")]).await;
        assert_eq!(ids(&v), vec![id], "{v}");

        let maintained = store.search_index_snapshot().await.unwrap();
        assert_eq!(maintained.docs.len(), 81);
        assert!(maintained.keys.len() > 81 * 10, "{} keys", maintained.keys.len());
        let n = store.rebuild_search_index().await.unwrap();
        assert_eq!(n, 81);
        let rebuilt = store.search_index_snapshot().await.unwrap();
        assert_eq!(maintained.docs, rebuilt.docs);
        assert_eq!(maintained.keys, rebuilt.keys);

        // A lost index (e.g. restored from an old backup) comes back with the command.
        match db_engine(&srv) {
            Engine::Sqlite => { srv.db.raw("DELETE FROM search_keys; DELETE FROM search_docs;").await.unwrap(); }
            Engine::Postgres => { srv.db.raw("TRUNCATE search_keys, search_docs").await.unwrap(); }
        }
        let (_, v) = search(&cgc, &[("q", "浜田美咲")]).await;
        assert!(ids(&v).is_empty());
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tsunagu-server"))
            .args(["--database-url", &srv.db.url, "rebuild-search-index"])
            .env("TSUNAGU_AUDIT_MAC_KEY_FILE", srv.db.mac_key_path())
            .env("TSUNAGU_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("81件"));
        assert_eq!(store.search_index_snapshot().await.unwrap(), maintained);
        let (_, v) = search(&cgc, &[("q", "浜田美咲")]).await;
        assert_eq!(ids(&v), vec![id]);
    }
}

fn db_engine(srv: &TestServer) -> Engine {
    srv.db.engine
}

/// The lookup is an index range scan on SQLite, never a scan of the table.
#[tokio::test]
async fn sqlite_lookup_uses_the_index() {
    let db = TestDb::new(Engine::Sqlite).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT record_id FROM search_keys WHERE kind = $1 AND key >= $2 AND key < $3 \
         AND birth >= $4 AND birth <= $5 ORDER BY kind, key, birth LIMIT $6",
    )
    .bind("n")
    .bind("山田")
    .bind("山田\u{10FFFF}")
    .bind(0i64)
    .bind(i64::MAX)
    .bind(201i64)
    .fetch_all(&pool)
    .await
    .unwrap();
    let plan: String = rows
        .iter()
        .map(|r| r.3.clone())
        .collect::<Vec<_>>()
        .join(" | ");
    assert!(
        plan.contains("SEARCH search_keys USING PRIMARY KEY"),
        "{plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE"),
        "sorted by the index, not afterwards: {plan}"
    );
}

// ----- issue 15: loanword kana, ties ---------------------------------------------------------

use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use tsunagu_masterdata::names::{self, NameKind};
use tsunagu_record::normalize::{has_loanword_kana, loanword_fold, name_key, reading_key};
use tsunagu_record::variants::fold_char;

/// Each hit of an answer in order: (record id, reasons, tied_with_previous of the hit or, for a
/// group's first hit, of the group).
fn hits(v: &Value) -> Vec<(i64, Vec<String>, bool)> {
    let mut out = Vec::new();
    for g in v["groups"].as_array().unwrap_or(&vec![]) {
        for (i, h) in g["hits"].as_array().unwrap().iter().enumerate() {
            let tied = if i == 0 {
                &g["tied_with_previous"]
            } else {
                &h["tied_with_previous"]
            };
            out.push((
                h["record_id"].as_i64().unwrap(),
                h["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
                tied.as_bool().unwrap_or(false),
            ));
        }
    }
    out
}

/// Katakana given names of the dictionary written with loanword kana (ヴィクトル, ティナ,
/// ジェシカ …), one per conventional spelling, in dictionary order.
fn loanword_given_names() -> Vec<&'static str> {
    let mut seen = std::collections::HashSet::new();
    names::entries()
        .iter()
        .filter(|e| {
            e.kind == NameKind::Given && e.name == e.reading && names::is_katakana(e.reading)
        })
        .filter(|e| has_loanword_kana(e.reading) && e.reading.chars().count() >= 2)
        .filter(|e| seen.insert(loanword_fold(e.reading)))
        .map(|e| e.reading)
        .collect()
}

/// The same reading with its last kana replaced: one edit away, never the same person.
fn one_edit_away(reading: &str) -> String {
    let mut c: Vec<char> = reading.chars().collect();
    let last = c.len() - 1;
    c[last] = if c[last] == 'ラ' { 'ナ' } else { 'ラ' };
    c.into_iter().collect()
}

/// In a module of their own: `both_engines!` makes one `sqlite` and one `postgres` module.
mod issue15 {
    use super::*;
    both_engines! {
        async fn loanword_kana_are_close_readings_between_exact_and_one_edit(db) {
            let srv = TestServer::start(db).await;
            let users = [srv.login("cgc").await, srv.login("osaka").await];
            let lg = ["131016", "271004"];
            let mut rng = rand::rngs::StdRng::seed_from_u64(15_003);
            let given = loanword_given_names();
            assert!(given.len() >= 40, "only {} loanword names in the dictionary", given.len());
            let families = names::family_names();
            // (case, record to register, which of the case it is)
            struct Case { family: (&'static str, &'static str), registered: String, typed: String, exact_rival: bool }
            let mut cases = Vec::new();
            for (i, g) in given.iter().take(40).enumerate() {
                let family = &families[(i * 37 + 11) % 2000];
                // Half registered with the loanword spelling and typed the conventional way, half
                // the other way round.
                let (registered, typed) = if i % 2 == 0 {
                    (g.to_string(), loanword_fold(g))
                } else {
                    (loanword_fold(g), g.to_string())
                };
                cases.push(Case { family: (family.name, family.reading), registered, typed, exact_rival: i % 3 == 0 });
            }
            // Targets and fair look-alikes (the typed reading one kana off; for a third of the
            // cases, someone whose reading is exactly what was typed), registered in random order.
            let mut todo: Vec<(usize, &'static str)> = Vec::new();
            for (i, c) in cases.iter().enumerate() {
                todo.push((i, "target"));
                todo.push((i, "one_edit"));
                if c.exact_rival {
                    todo.push((i, "exact"));
                }
            }
            todo.shuffle(&mut rng);
            let mut ids: std::collections::HashMap<(usize, &'static str), i64> = Default::default();
            for (k, (i, role)) in todo.iter().enumerate() {
                let c = &cases[*i];
                let given = match *role {
                    "target" => c.registered.clone(),
                    "one_edit" => one_edit_away(&c.typed),
                    _ => c.typed.clone(),
                };
                let u = rng.gen_range(0..2);
                let birth = format!("2015-{:02}-{:02}", 1 + k % 12, 1 + k % 28);
                let id = users[u].create(&person(lg[u], (c.family.0, &given, c.family.1, &given), 2, &birth, (c.family.0, "一", c.family.1, "ハジメ"), "L")).await;
                ids.insert((*i, role), id);
            }
            for (i, c) in cases.iter().enumerate() {
                let q = format!("{} {}", c.family.1, c.typed);
                let (s, v) = search(&users[i % 2], &[("q", &q)]).await;
                assert_eq!(s, StatusCode::OK, "{q}: {v}");
                let h = hits(&v);
                let pos = |role| h.iter().position(|x| x.0 == ids[&(i, role)]);
                let t = pos("target").unwrap_or_else(|| panic!("{q} does not find {}: {v}", c.registered));
                assert!(h[t].1.contains(&"loanword_kana".to_string()), "{q} → {}: {:?}", c.registered, h[t]);
                assert!(!h[t].1.contains(&"same_reading".to_string()), "close, not equal: {:?}", h[t]);
                // The look-alike one kana off is found only by the typo pass, which runs when the
                // whole name found nobody; when it is found, it ranks below.
                if let Some(d) = pos("one_edit") {
                    assert!(t < d && !h[d].2, "{q}: loanword above one edit: {v}");
                }
                if c.exact_rival {
                    let e = pos("exact").unwrap();
                    assert_eq!((e, t), (0, 1), "{q}: the exact reading first, the loanword spelling next: {v}");
                    assert!(h[0].1.contains(&"same_reading".to_string()) && !h[1].2, "{v}");
                } else {
                    assert_eq!(t, 0, "{q}: {v}");
                }
            }
        }

        async fn one_typo_in_a_short_kana_name_is_found(db) {
        let srv = TestServer::start(db).await;
        let users = [srv.login("cgc").await, srv.login("osaka").await];
        let lg = ["131016", "271004"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(15_006);
        let (families, givens) = (names::family_names(), names::given_names());
        const KANA: &str = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";
        let kana: Vec<char> = KANA.chars().collect();
        // Short names of the dictionary (five or six kana once long vowels go), each typed
        // with one typo after the first kana: replaced, missing, extra or two swapped.
        let mut cases: Vec<(&names::NameEntry, &names::NameEntry, String)> = Vec::new();
        let mut readings = std::collections::HashSet::new();
        while cases.len() < 40 {
            let (f, g) = (&families[rng.gen_range(0..3000)], &givens[rng.gen_range(0..3000)]);
            let full = format!("{}{}", f.reading, g.reading);
            let loose = tsunagu_record::normalize::loose_reading(&full);
            if !(5..=6).contains(&loose.chars().count()) || !readings.insert(reading_key(&full)) {
                continue;
            }
            let mut c: Vec<char> = loose.chars().collect();
            let i = rng.gen_range(1..c.len() - 1);
            match rng.gen_range(0..4) {
                0 => { c.remove(i); }
                1 if c[i] != c[i + 1] => c.swap(i, i + 1),
                2 => c.insert(i, kana[rng.gen_range(0..kana.len())]),
                _ => c[i] = kana[rng.gen_range(0..kana.len())],
            }
            let typed: String = c.into_iter().collect();
            if tsunagu_record::normalize::loose_reading(&typed) == loose {
                continue;
            }
            cases.push((f, g, typed));
        }
        // Each target, and a look-alike whose reading starts with what was typed (so the typed
        // name finds someone and the typo pass never ran), in random order.
        let mut todo: Vec<(usize, bool)> = (0..cases.len()).flat_map(|i| [(i, true), (i, false)]).collect();
        todo.shuffle(&mut rng);
        let mut target = std::collections::HashMap::new();
        for (k, (i, is_target)) in todo.iter().enumerate() {
            let (f, g, typed) = &cases[*i];
            let u = rng.gen_range(0..2);
            let birth = format!("2014-{:02}-{:02}", 1 + k % 12, 1 + k % 28);
            let body = if *is_target {
                person(lg[u], (f.name, g.name, f.reading, g.reading), 1, &birth, (f.name, "一", f.reading, "ハジメ"), "T")
            } else {
                let other = &families[(i * 13 + 3001) % families.len()];
                person(lg[u], (other.name, "愛", typed, "アイ"), 2, &birth, (other.name, "一", typed, "ハジメ"), "D")
            };
            let id = users[u].create(&body).await;
            if *is_target {
                target.insert(*i, id);
            }
        }
        for (i, (f, g, typed)) in cases.iter().enumerate() {
            let (_, v) = search(&users[i % 2], &[("q", typed)]).await;
            let h = hits(&v);
            let t = h.iter().position(|x| x.0 == target[&i]);
            let t = t.unwrap_or_else(|| panic!("{typed} for {}{} ({}{}) not found: {v}", f.name, g.name, f.reading, g.reading));
            assert!(t < 10 && h[t].1.contains(&"one_edit".to_string()), "{typed}: {v}");
        }
        // A common start: more than the candidate cap of children whose reading starts with the
        // same two kana, born within the month, registered before the target.
        let (f, g) = (("山木", "ヤマキ"), ("陽子", "ヨウコ"));
        for k in 0..205u32 {
            let gk: String = [kana[(k / 26) as usize % 5], kana[(k % 26) as usize + 5], 'ロ', 'ウ'].iter().collect();
            let birth = format!("2013-05-{:02}", 1 + k % 28);
            users[0].create(&person(lg[0], ("山", "郎", "ヤマア", &gk), 1, &birth, ("山", "一", "ヤマア", "ハジメ"), "C")).await;
        }
        let id = users[1].create(&person(lg[1], (f.0, g.0, f.1, g.1), 2, "2013-05-15", (f.0, "一", f.1, "ハジメ"), "T")).await;
        let (_, v) = search(&users[0], &[("q", "ヤマキカコ"), ("birth", "2013-05-15")]).await;
        assert_eq!(hits(&v).first().map(|x| x.0), Some(id), "{v}");
    }

    async fn a_kanji_name_with_other_kanji_of_the_same_reading_is_found_by_its_dictionary_reading(db) {
        let srv = TestServer::start(db).await;
        let users = [srv.login("cgc").await, srv.login("osaka").await];
        let lg = ["131016", "271004"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(15_001);
        // Family spellings with the same cheapest reading in the dictionary (阿部/安部 アベ,
        // 伊藤/伊東 イトウ): the child is registered with one, the caseworker types the other.
        let fams = names::family_names();
        let mut cheapest_of: std::collections::HashMap<String, (i32, String)> = Default::default();
        for e in names::entries() {
            let c = cheapest_of.entry(name_key(e.name)).or_insert((e.cost, reading_key(e.reading)));
            if e.cost < c.0 { *c = (e.cost, reading_key(e.reading)); }
        }
        let cheapest = |spelling: &str| cheapest_of.get(&name_key(spelling)).map(|c| c.1.clone());
        let mut by_reading: std::collections::HashMap<String, Vec<&names::NameEntry>> = Default::default();
        for e in fams.iter().take(4000) {
            if cheapest(e.name).as_deref() == Some(&reading_key(e.reading)) {
                let v = by_reading.entry(reading_key(e.reading)).or_default();
                if !v.iter().any(|x| name_key(x.name) == name_key(e.name)) {
                    v.push(e);
                }
            }
        }
        let mut pairs: Vec<(&names::NameEntry, &names::NameEntry)> = by_reading
            .values()
            .filter(|v| v.len() >= 2)
            .map(|v| (v[0], v[1]))
            .collect();
        pairs.sort_by_key(|p| (p.0.reading, p.0.name));
        pairs.shuffle(&mut rng);
        assert!(pairs.len() >= 30, "only {} same-reading spellings", pairs.len());
        let givens = names::given_names();
        struct Case { registered: &'static str, typed: &'static str, reading: &'static str, given: &'static names::NameEntry, birth: String, rival: bool }
        let cases: Vec<Case> = pairs.iter().take(30).enumerate().map(|(i, (a, b))| {
            let (registered, typed) = if i % 2 == 0 { (a, b) } else { (b, a) };
            Case {
                registered: registered.name,
                typed: typed.name,
                reading: registered.reading,
                given: &givens[rng.gen_range(0..3000)],
                birth: format!("2016-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
                rival: i % 3 == 0,
            }
        }).collect();
        // The target; a child with the typed family name exactly and another given name; a child
        // whose reading is one kana off the target's; for a third, a child named exactly as typed
        // (other reading). Registered in random order.
        let mut todo: Vec<(usize, &str)> = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            todo.extend([(i, "target"), (i, "same_family"), (i, "one_off")]);
            if c.rival { todo.push((i, "rival")); }
        }
        todo.shuffle(&mut rng);
        let mut ids: std::collections::HashMap<(usize, &str), i64> = Default::default();
        for (i, role) in todo {
            let c = &cases[i];
            let other = &givens[(i * 31 + 3001) % givens.len()];
            let off = one_edit_away(c.given.reading);
            let child = match role {
                "target" => (c.registered, c.given.name, c.reading, c.given.reading),
                "same_family" => (c.typed, other.name, c.reading, other.reading),
                "one_off" => ("仮名", "仮", c.reading, off.as_str()),
                _ => (c.typed, c.given.name, "ベツヨミ", "ベツ"),
            };
            let u = rng.gen_range(0..2);
            let id = users[u].create(&person(lg[u], child, 2, &c.birth, (c.registered, "一", c.reading, "ハジメ"), "K")).await;
            ids.insert((i, role), id);
        }
        for (i, c) in cases.iter().enumerate() {
            // Kanji only, no reading: with the birth date, and (for the full name's reading) without.
            let q = if i % 2 == 0 { format!("{} {}", c.typed, c.given.name) } else { format!("{}{}", c.typed, c.given.name) };
            let with_birth = i % 4 < 2;
            let mut params = vec![("q", q.as_str())];
            if with_birth { params.push(("birth", c.birth.as_str())); }
            let (s, v) = search(&users[i % 2], &params).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            let h = hits(&v);
            let pos = |role| h.iter().position(|x| x.0 == ids[&(i, role)]);
            let t = pos("target").unwrap_or_else(|| panic!("{q} does not find {}{}: {v}", c.registered, c.given.name));
            assert!(h[t].1.contains(&"dictionary_reading".to_string()), "{q}: {:?}", h[t]);
            assert!(!h[t].1.iter().any(|r| r == "exact_name" || r == "variant_kanji"), "{q}: {:?}", h[t]);
            if c.rival {
                assert_eq!(pos("rival"), Some(0), "{q}: the name as typed first: {v}");
                assert_eq!(t, 1, "{q}: {v}");
            } else {
                assert_eq!(t, 0, "{q}: {v}");
            }
            assert!(!h[t].2, "{q}: not tied: {v}");
            for role in ["same_family", "one_off"] {
                if let Some(d) = pos(role) { assert!(d > t, "{q}: {role} above the target: {v}"); }
            }
        }
    }

    async fn everyday_variant_pairs_fold_whichever_form_is_registered(db) {
        let srv = TestServer::start(db).await;
        let users = [srv.login("cgc").await, srv.login("osaka").await];
        let lg = ["131016", "271004"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(15_002);
        // Every pair of everyday kanji (both in the CJK Unified block, both in names of the
        // dictionary) that the variant tables fold together: a family name with one form is
        // registered, the other form typed.
        let in_names: std::collections::HashSet<char> = names::entries().iter().flat_map(|e| e.name.chars()).collect();
        let everyday = |c: char| ('\u{4E00}'..='\u{9FFF}').contains(&c) && in_names.contains(&c);
        let mut classes: std::collections::BTreeMap<char, Vec<char>> = Default::default();
        for &c in &in_names {
            if everyday(c) { classes.entry(fold_char(c)).or_default().push(c); }
        }
        let mut pairs: Vec<(char, char)> = classes.values().filter(|v| v.len() >= 2).map(|v| { let mut v = v.clone(); v.sort(); (v[0], v[1]) }).collect();
        pairs.sort();
        assert!(pairs.len() >= 60, "{} everyday pairs", pairs.len());
        // The pairs both source tables miss must be among them.
        for p in ["槇槙", "桧檜", "薮藪", "埼崎", "遙遥"] {
            let c: Vec<char> = p.chars().collect();
            assert_eq!(fold_char(c[0]), fold_char(c[1]), "{p}");
        }
        pairs.shuffle(&mut rng);
        let families = names::family_names();
        let mut cases = Vec::new();
        for (a, b) in pairs.into_iter().take(40) {
            let (reg, typed) = if rng.gen_bool(0.5) { (a, b) } else { (b, a) };
            // A dictionary family name with one of the two, else the character with 田.
            let fam = families.iter().find(|e| e.name.contains(a) || e.name.contains(b));
            let (name, reading) = match fam { Some(e) => (e.name.replace(b, &a.to_string()), e.reading), None => (format!("{a}田"), "カリタ") };
            let registered = name.replace(a, &reg.to_string());
            let typed_name = name.replace(a, &typed.to_string());
            cases.push((registered, typed_name, reading));
        }
        let mut order: Vec<usize> = (0..cases.len()).collect();
        order.shuffle(&mut rng);
        let mut ids = std::collections::HashMap::new();
        for (k, &i) in order.iter().enumerate() {
            let (registered, _, reading) = &cases[i];
            let u = rng.gen_range(0..2);
            let birth = format!("2012-{:02}-{:02}", 1 + k % 12, 1 + k % 28);
            ids.insert(i, (users[u].create(&person(lg[u], (registered, "花", reading, "ハナ"), 2, &birth, (registered, "一", reading, "ハジメ"), "V")).await, birth));
        }
        for (i, (registered, typed, _)) in cases.iter().enumerate() {
            let (id, birth) = &ids[&i];
            let q = format!("{typed} 花");
            let (_, v) = search(&users[i % 2], &[("q", &q), ("birth", birth)]).await;
            let h = hits(&v);
            assert_eq!(h.first().map(|x| x.0), Some(*id), "{q} for {registered}: {v}");
            if registered != typed {
                assert!(h[0].1.contains(&"variant_kanji".to_string()), "{q} for {registered}: {v}");
            }
        }
    }

    async fn part_of_the_family_and_part_of_the_given_name_with_the_birth_year_find_the_child(db) {
        let srv = TestServer::start(db).await;
        let users = [srv.login("cgc").await, srv.login("osaka").await];
        let lg = ["131016", "271004"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(15_004);
        let (families, givens) = (names::family_names(), names::given_names());
        // Targets, each with more than the candidate cap of children born the same year who
        // share only the start of the family name or only the start of the given name.
        let mut todo: Vec<(usize, usize)> = Vec::new(); // (case, 0 target | 1.. look-alike)
        let mut cases = Vec::new();
        for i in 0..4usize {
            let f = &families[rng.gen_range(0..2000)];
            let g = givens.iter().skip(rng.gen_range(0..2000)).find(|g| g.reading.chars().count() >= 3 && g.name.chars().count() >= 2 && !g.name.chars().any(|c| c.is_ascii())).unwrap();
            if f.reading.chars().count() < 3 { continue; }
            cases.push((f, g, 2010 + i as i32));
            for k in 0..=230 { todo.push((cases.len() - 1, k)); }
        }
        todo.shuffle(&mut rng);
        let mut target = std::collections::HashMap::new();
        let kana: Vec<char> = "アイウエオカキクケコサシスセソタチツテトナニヌネノ".chars().collect();
        for (i, k) in todo {
            let (f, g, year) = cases[i];
            let birth = format!("{year}-{:02}-{:02}", 1 + k % 12, 1 + k % 28);
            let fk: Vec<char> = f.reading.chars().collect();
            let gk: Vec<char> = g.reading.chars().collect();
            let fam: String = f.name.chars().take(1).collect();
            let giv: String = g.name.chars().take(1).collect();
            let u = k % 2;
            let child: (String, String, String, String) = if k == 0 {
                (f.name.into(), g.name.into(), f.reading.into(), g.reading.into())
            } else if k % 2 == 1 {
                // The family name's start, another given name (another start, in both scripts).
                (format!("{fam}岡"), "一郎".into(), format!("{}{}ム{}", fk[0], fk[1], kana[k % kana.len()]), format!("ム{}", kana[(k / 7) % kana.len()]))
            } else {
                (format!("森{}", kana[k % 5]), format!("{giv}美"), format!("モリ{}", kana[(k / 3) % kana.len()]), format!("{}{}ミ", gk[0], gk[1]))
            };
            let id = users[u].create(&person(lg[u], (&child.0, &child.1, &child.2, &child.3), 1, &birth, ("保護", "一", "ホゴ", "ハジメ"), "P")).await;
            if k == 0 { target.insert(i, id); }
        }
        for (i, (f, g, year)) in cases.iter().enumerate() {
            let fk: String = f.reading.chars().take(2).collect();
            let gk: String = g.reading.chars().take(2).collect();
            let fam: String = f.name.chars().take(1).collect();
            let giv: String = g.name.chars().take(1).collect();
            for q in [format!("{fk} {gk}"), format!("{fam} {giv}"), format!("{fam} {gk}")] {
                let (s, v) = search(&users[i % 2], &[("q", &q), ("birth", &year.to_string())]).await;
                assert_eq!(s, StatusCode::OK, "{q}: {v}");
                let h = hits(&v);
                let t = h.iter().position(|x| x.0 == target[&i]).unwrap_or_else(|| panic!("{q} {year} does not find {}{}: {v}", f.name, g.name));
                assert_eq!(t, 0, "{q}: the only child with both parts first: {v}");
                assert!(h[0].1.contains(&"part_of_name".to_string()), "{q}: {v}");
            }
        }
    }

    async fn equal_hits_are_shown_as_equal_and_never_ordered_by_id(db) {
            let srv = TestServer::start(db).await;
            let users = [srv.login("cgc").await, srv.login("osaka").await];
            let lg = ["131016", "271004"];
            let mut rng = rand::rngs::StdRng::seed_from_u64(15_005);
            let families = names::family_names();
            let givens = names::given_names();
            for round in 0..3 {
                let family = &families[rng.gen_range(0..3000)];
                // Eight children of one family name, distinct readings, in random order.
                let mut seen = std::collections::HashSet::new();
                let mut kids: Vec<&names::NameEntry> = Vec::new();
                while kids.len() < 8 {
                    let g = &givens[rng.gen_range(0..5000)];
                    if seen.insert(reading_key(g.reading)) {
                        kids.push(g);
                    }
                }
                kids.shuffle(&mut rng);
                // Births spread around a day: the k-th child k days after it, alternately before
                // and after, so two children at each distance.
                let day = chrono::NaiveDate::from_ymd_opt(2016, 6, 15).unwrap() + chrono::Days::new(round * 100);
                let mut made: Vec<(i64, String, i64)> = Vec::new();
                for (k, g) in kids.iter().enumerate() {
                    let gap = (k / 2 + 1) as i64;
                    let d = if k % 2 == 0 { day + chrono::Days::new(gap as u64) } else { day - chrono::Days::new(gap as u64) };
                    let u = rng.gen_range(0..2);
                    let id = users[u].create(&person(lg[u], (family.name, g.name, family.reading, g.reading), 1, &d.to_string(), (family.name, "一", family.reading, "ハジメ"), "E")).await;
                    made.push((id, reading_key(&format!("{}{}", family.reading, g.reading)), gap));
                }
                // The family name alone: every child is the same evidence, a tie, shown in reading
                // order, whoever registered first.
                let (_, v) = search(&users[0], &[("q", family.name)]).await;
                let h: Vec<_> = hits(&v).into_iter().filter(|x| made.iter().any(|m| m.0 == x.0)).collect();
                assert_eq!(h.len(), 8, "{v}");
                let mut by_reading = made.clone();
                by_reading.sort_by(|a, b| a.1.cmp(&b.1));
                assert_eq!(h.iter().map(|x| x.0).collect::<Vec<_>>(), by_reading.iter().map(|m| m.0).collect::<Vec<_>>(), "{v}");
                assert!(h[1..].iter().all(|x| x.2), "all equal: {v}");
                // With the day: the closer birth date first; the two at each distance tie.
                let (_, v) = search(&users[1], &[("q", family.name), ("birth", &day.to_string())]).await;
                let h: Vec<_> = hits(&v).into_iter().filter(|x| made.iter().any(|m| m.0 == x.0)).collect();
                assert_eq!(h.len(), 8, "{v}");
                let gap_of = |id: i64| made.iter().find(|m| m.0 == id).unwrap().2;
                let gaps: Vec<i64> = h.iter().map(|x| gap_of(x.0)).collect();
                assert_eq!(gaps, vec![1, 1, 2, 2, 3, 3, 4, 4], "{v}");
                for (k, x) in h.iter().enumerate().skip(1) {
                    assert_eq!(x.2, k % 2 == 1, "hit {k}: tied only with the other child at its distance: {v}");
                }
                for pair in h.chunks(2) {
                    let r = |id| made.iter().find(|m| m.0 == id).unwrap().1.clone();
                    assert!(r(pair[0].0) < r(pair[1].0), "equal hits in reading order: {v}");
                }
            }
        }
    }
}
