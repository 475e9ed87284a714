//! Tests, including a golden corpus of regctl-style format strings.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::value::fmt_float;
use super::{Object, Template, Time, Value};
use crate::error::ErrorKind;

/// A descriptor, as regctl exposes `types.Descriptor`.
struct Desc {
    media_type: &'static str,
    digest: &'static str,
    size: i64,
}

impl Object for Desc {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "MediaType" => Some(Value::String(self.media_type.into())),
            "Digest" => Some(Value::String(self.digest.into())),
            "Size" => Some(Value::Int(self.size)),
            "Annotations" => Some(Value::Nil),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
    fn type_name(&self) -> String {
        "types.Descriptor".into()
    }
}

/// A manifest, as regctl exposes `manifest.Manifest`.
struct Man;

const MT_IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn layers() -> Vec<Value> {
    vec![
        Value::Object(Arc::new(Desc {
            media_type: MT_LAYER,
            digest: "sha256:l1",
            size: 100,
        })),
        Value::Object(Arc::new(Desc {
            media_type: MT_LAYER,
            digest: "sha256:l2",
            size: 200,
        })),
    ]
}

fn annotations() -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    m.insert(
        "org.opencontainers.image.created".to_string(),
        Value::String("2024-01-01".into()),
    );
    m.insert("version".to_string(), Value::String("1.0".into()));
    m
}

impl Object for Man {
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "MediaType" => Value::String(MT_IMAGE.into()),
            "Digest" => Value::String("sha256:aaa".into()),
            "Name" => Value::String("registry.example.com/repo:v1".into()),
            "Config" => Value::Object(Arc::new(Desc {
                media_type: "application/vnd.oci.image.config.v1+json",
                digest: "sha256:cfg",
                size: 1234,
            })),
            "Layers" => Value::List(layers()),
            "Annotations" => Value::Map(annotations()),
            "GetDescriptor" => Value::Object(Arc::new(Desc {
                media_type: MT_IMAGE,
                digest: "sha256:aaa",
                size: 999,
            })),
            "RawBody" => Value::String("{\"schemaVersion\":2}".into()),
            "IsList" => Value::Bool(false),
            _ => return None,
        })
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MT_IMAGE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:cfg", "size": 1234},
            "layers": [
                {"mediaType": MT_LAYER, "digest": "sha256:l1", "size": 100},
                {"mediaType": MT_LAYER, "digest": "sha256:l2", "size": 200}
            ],
            "annotations": {"org.opencontainers.image.created": "2024-01-01", "version": "1.0"}
        })
    }
    fn pretty(&self) -> Option<String> {
        Some(format!(
            "Name:        registry.example.com/repo:v1\nMediaType:   {MT_IMAGE}\nDigest:      sha256:aaa\n"
        ))
    }
    fn type_name(&self) -> String {
        "*manifest.OCI1Manifest".into()
    }
}

fn man() -> Value {
    Value::Object(Arc::new(Man))
}

fn config() -> Value {
    Value::Json(serde_json::json!({
        "created": "2024-03-01T10:20:30Z",
        "architecture": "amd64",
        "os": "linux",
        "os.version": "10.0.1",
        "config": {"Labels": {"version": "1", "org.example.name": "demo"}, "Env": ["A=1", "PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:d1", "sha256:d2"]},
        "history": [{"created_by": "RUN a", "empty_layer": true}, {"created_by": "COPY b"}],
        "size": 1.5,
        "count": 3
    }))
}

fn render(src: &str, data: &Value) -> String {
    match Template::parse(src) {
        Ok(t) => match t.render(data) {
            Ok(s) => s,
            Err(e) => panic!("render {src:?}: {e}"),
        },
        Err(e) => panic!("parse {src:?}: {e}"),
    }
}

fn render_err(src: &str, data: &Value) -> crate::Error {
    let t = Template::parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
    match t.render(data) {
        Ok(s) => panic!("render {src:?} should fail, got {s:?}"),
        Err(e) => e,
    }
}

fn parse_err(src: &str) -> crate::Error {
    match Template::parse(src) {
        Ok(_) => panic!("parse {src:?} should fail"),
        Err(e) => e,
    }
}

/// The golden corpus over the manifest object.
const MANIFEST_CASES: &[(&str, &str)] = &[
    ("{{.Digest}}", "sha256:aaa"),
    ("{{.GetDescriptor.Digest}}", "sha256:aaa"),
    ("{{.GetDescriptor.Size}}", "999"),
    ("{{(index .Layers 0).Digest}}", "sha256:l1"),
    ("{{(index .Layers 1).Size}}", "200"),
    ("{{range .Layers}}{{.Digest}}{{\"\\n\"}}{{end}}", "sha256:l1\nsha256:l2\n"),
    ("{{len .Layers}}", "2"),
    (
        "{{if eq .MediaType \"application/vnd.oci.image.index.v1+json\"}}index{{else}}image{{end}}",
        "image",
    ),
    (
        "{{if eq .MediaType \"x\" \"application/vnd.oci.image.manifest.v1+json\"}}yes{{end}}",
        "yes",
    ),
    ("{{range $i, $l := .Layers}}{{$i}}: {{$l.Size}}{{println}}{{end}}", "0: 100\n1: 200\n"),
    ("{{ printf \"%s@%s\" .Name .Digest }}", "registry.example.com/repo:v1@sha256:aaa"),
    ("{{ range $k, $v := .Annotations }}{{$k}}={{$v}} {{end}}", "org.opencontainers.image.created=2024-01-01 version=1.0 "),
    ("{{ index .Annotations \"version\" }}", "1.0"),
    ("{{ .Annotations.version }}", "1.0"),
    ("{{ .Annotations.missing }}", "<no value>"),
    ("{{ .Annotations.missing | default \"x\" }}", "x"),
    ("{{- /* comment */ -}}\n  {{.Digest}}", "sha256:aaa"),
    ("a  {{- .Digest -}}  \n b", "asha256:aaab"),
    ("{{with .Config}}{{.Digest}} {{.Size}}{{end}}", "sha256:cfg 1234"),
    ("{{.Config.MediaType}}", "application/vnd.oci.image.config.v1+json"),
    ("{{json .Annotations}}", "{\"org.opencontainers.image.created\":\"2024-01-01\",\"version\":\"1.0\"}\n"),
    ("{{json .Config}}", "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:cfg\",\"size\":1234}\n"),
    ("{{jsonPretty .Annotations}}", "{\n  \"org.opencontainers.image.created\": \"2024-01-01\",\n  \"version\": \"1.0\"\n}\n"),
    ("{{printPretty .}}", "Name:        registry.example.com/repo:v1\nMediaType:   application/vnd.oci.image.manifest.v1+json\nDigest:      sha256:aaa\n"),
    ("{{printPretty .Config}}", "{\n  \"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n  \"digest\": \"sha256:cfg\",\n  \"size\": 1234\n}\n"),
    ("{{.RawBody}}", "{\"schemaVersion\":2}"),
    ("{{ join (split \"a,b,c\" \",\") \"-\" }}", "a-b-c"),
    ("{{ lower \"ABC\" }}{{ upper \"def\" }}", "abcDEF"),
    ("{{ trimSpace \"  x y  \" }}|", "x y|"),
    ("{{ title \"hello world\" }}", "Hello World"),
    ("{{ \"ABC\" | lower }}", "abc"),
    ("{{$d := .Digest}}{{range .Layers}}{{$d}}>{{.Digest}} {{end}}", "sha256:aaa>sha256:l1 sha256:aaa>sha256:l2 "),
    ("{{range .Layers}}{{if eq .Digest \"sha256:l1\"}}{{continue}}{{end}}{{.Digest}}{{end}}", "sha256:l2"),
    ("{{range .Layers}}{{.Digest}}{{break}}{{end}}", "sha256:l1"),
    ("{{range .Annotations.nothing}}x{{else}}empty{{end}}", "empty"),
    ("{{if and .Layers (gt (len .Layers) 1)}}multi{{end}}", "multi"),
    ("{{if or .IsList (not .Layers)}}a{{else if .Layers}}b{{else}}c{{end}}", "b"),
    ("{{with .Annotations.none}}x{{else with .Annotations.version}}v={{.}}{{end}}", "v=1.0"),
    ("{{range $l := .Layers}}{{$l.MediaType | printf \"%.9s\"}};{{end}}", "applicati;applicati;"),
    ("{{printf \"%-10s|%5d|%05d|%x|%q|%t|%.2f|%v|%%\" \"ab\" 42 42 255 \"q\" true 3.14159 .Layers}}", "ab        |   42|00042|ff|\"q\"|true|3.14|[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:l1\",\"size\":100} {\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:l2\",\"size\":200}]|%"),
    ("{{define \"d\"}}[{{.Digest}}]{{end}}{{template \"d\" .Config}}{{template \"d\" .}}", "[sha256:cfg][sha256:aaa]"),
    ("{{block \"b\" .GetDescriptor}}<{{.Size}}>{{end}}", "<999>"),
    ("{{ slice .Digest 0 6 }}", "sha256"),
    ("{{ index .Layers 1 | json }}", "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:l2\",\"size\":200}\n"),
    ("{{ .Annotations }}", "map[org.opencontainers.image.created:2024-01-01 version:1.0]"),
    ("{{ split \"a b\" \" \" }}", "[a b]"),
    ("{{ print 1 2 \"x\" 3 }} {{ println \"a\" 1 }}", "1 2x3 a 1\n"),
    ("{{ html \"<a href='x'>&\" }} {{ js \"it's <b>\" }} {{ urlquery \"a b&c=d\" }}", "&lt;a href=&#39;x&#39;&gt;&amp; it\\'s \\u003Cb\\u003E a+b%26c%3Dd"),
    ("{{ (time.Parse \"2006-01-02\" \"2024-03-01\").Unix }}", "1709251200"),
    ("{{ ((time).Parse \"2006-01-02T15:04:05Z07:00\" \"2024-03-01T10:20:30+02:00\").UTC.Format \"Jan _2 15:04:05 2006 MST\" }}", "Mar  1 08:20:30 2024 UTC"),
    ("{{ $t := (time).Parse \"2006-01-02 15:04:05.000\" \"1999-12-31 23:59:58.250\" }}{{ $t }}|{{ $t.Format \"Monday 02 Jan 06 3:04PM .999\" }}", "1999-12-31 23:59:58.25 +0000 UTC|Friday 31 Dec 99 11:59PM .25"),
    ("{{ eq 1 1.0 }} {{ lt 1 2.5 }} {{ ge \"b\" \"a\" }} {{ ne .Digest \"x\" }} {{ le 3 2 }}", "true true true true false"),
    ("{{ 0x1F }} {{ -3 }} {{ 1.5 }} {{ 'a' }} {{ 1e6 }} {{ `raw\\n` }} {{ nil | default \"n\" }}", "31 -3 1.5 97 1e+06 raw\\n n"),
    ("{{ range 3 }}{{.}}{{end}}", "012"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}", "2"),
    ("{{ .IsList }} {{ not .IsList }}", "false true"),
    ("{{- if .IsList -}}\n  list\n{{- else -}}\n  image\n{{- end -}}\n", "image"),
    ("{{ range $i, $e := .Layers }}{{ if $i }}, {{ end }}{{ $e.Digest }}{{ end }}", "sha256:l1, sha256:l2"),
    ("{{ $total := 0 }}{{ range .Layers }}{{ $total = .Size }}{{ end }}{{ $total }}", "200"),
    ("{{ with $d := .GetDescriptor }}{{ $d.MediaType }}{{ end }}", "application/vnd.oci.image.manifest.v1+json"),
];

/// The golden corpus over an image config held as JSON.
const CONFIG_CASES: &[(&str, &str)] = &[
    ("{{.Architecture}}/{{.OS}}", "amd64/linux"),
    ("{{.OSVersion}}", "10.0.1"),
    ("{{.RootFS.DiffIDs}}", "[sha256:d1 sha256:d2]"),
    ("{{.RootFS.Type}}", "layers"),
    ("{{ index .Config.Labels \"version\" }}", "1"),
    ("{{.Config.Labels.version}}", "1"),
    ("{{ index .Config.Labels \"org.example.name\" }}", "demo"),
    ("{{range .Config.Env}}{{.}};{{end}}", "A=1;PATH=/bin;"),
    ("{{ join .Config.Env \",\" }}", "A=1,PATH=/bin"),
    ("{{ range $k, $v := .Config.Labels }}{{$k}}={{$v}},{{end}}", "org.example.name=demo,version=1,"),
    ("{{ .Missing }}", "<no value>"),
    ("{{ .Missing | default \"x\" }}", "x"),
    ("{{ .Missing.Deeper }}", "<no value>"),
    ("{{ len .RootFS.DiffIDs }} {{ len .Config.Labels }}", "2 2"),
    ("{{ index .RootFS.DiffIDs 1 }}", "sha256:d2"),
    ("{{ (index .History 0).CreatedBy }} {{ (index .History 0).EmptyLayer }}", "RUN a true"),
    ("{{ range .History }}{{ if .EmptyLayer }}empty{{ else }}{{ .CreatedBy }}{{ end }},{{ end }}", "empty,COPY b,"),
    ("{{ .Size }} {{ .Count }} {{ gt .Count 2 }} {{ printf \"%d\" .Count }}", "1.5 3 true 3"),
    ("{{ .Config.Labels }}", "map[org.example.name:demo version:1]"),
    ("{{ json .RootFS }}", "{\"type\":\"layers\",\"diff_ids\":[\"sha256:d1\",\"sha256:d2\"]}\n"),
    ("{{ .Created }}", "2024-03-01T10:20:30Z"),
    ("{{ ((time).Parse \"2006-01-02T15:04:05Z07:00\" .Created).Unix }}", "1709288430"),
];

#[test]
fn golden_manifest() {
    let data = man();
    let mut failures = Vec::new();
    for (src, want) in MANIFEST_CASES {
        let got = render(src, &data);
        if got != *want {
            failures.push(format!("{src}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(MANIFEST_CASES.len() + CONFIG_CASES.len() >= 40);
}

#[test]
fn golden_config() {
    let data = config();
    let mut failures = Vec::new();
    for (src, want) in CONFIG_CASES {
        let got = render(src, &data);
        if got != *want {
            failures.push(format!("{src}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_of_object_and_whole_manifest() {
    let out = render("{{json .}}", &man());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["layers"][1]["digest"], "sha256:l2");
    assert!(out.ends_with("}\n"));
    // No HTML escaping, unlike Go's default encoder.
    assert_eq!(render("{{json \"<&>\"}}", &Value::Nil), "\"<&>\"\n");
    assert_eq!(render("{{json .}}", &config()).lines().count(), 1);
}

#[test]
fn env_and_default() {
    std::env::set_var("REGCLIENT_TMPL_TEST_VAR", "hello");
    assert_eq!(
        render("{{ env \"REGCLIENT_TMPL_TEST_VAR\" }}", &Value::Nil),
        "hello"
    );
    assert_eq!(
        render(
            "{{ env \"REGCLIENT_TMPL_TEST_UNSET_VAR\" | default \"none\" }}",
            &Value::Nil
        ),
        "none"
    );
    assert_eq!(
        render("{{ \"set\" | default \"none\" }}", &Value::Nil),
        "set"
    );
    assert_eq!(render("{{ 0 | default 5 }}", &Value::Nil), "5");
}

#[test]
fn file_function() {
    let dir = std::env::temp_dir().join(format!("regclient-tmpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("f.txt");
    std::fs::write(&p, "\n  content here \n\n").unwrap();
    let src = format!("[{{{{ file {:?} }}}}]", p.to_str().unwrap());
    assert_eq!(render(&src, &Value::Nil), "[content here]");
    assert_eq!(
        render("[{{ file \"/nonexistent/regclient/x\" }}]", &Value::Nil),
        "[]"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn time_now_is_plausible() {
    let out = render("{{ (time).Now.Unix }}", &Value::Nil);
    let n: i64 = out.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((n - now).abs() < 60, "{n} vs {now}");
    let s = render("{{ time.Now }}", &Value::Nil);
    assert!(s.ends_with(" +0000 UTC"), "{s}");
    assert!(s.len() >= "2026-01-01 00:00:00 +0000 UTC".len(), "{s}");
    let y = render("{{ time.Now.Format \"2006\" }}", &Value::Nil);
    assert!(y.parse::<i64>().unwrap() >= 2024);
}

#[test]
fn time_layouts() {
    let t = Time::from_unix(1_709_288_430, 123_456_789);
    assert_eq!(
        t.format("2006-01-02T15:04:05Z07:00"),
        "2024-03-01T10:20:30Z"
    );
    assert_eq!(
        t.format("2006-01-02T15:04:05.999999999Z07:00"),
        "2024-03-01T10:20:30.123456789Z"
    );
    assert_eq!(
        t.format("Mon Jan _2 15:04:05 MST 2006"),
        "Fri Mar  1 10:20:30 UTC 2024"
    );
    assert_eq!(
        t.format("02/01/06 03:04:05.000 PM -0700"),
        "01/03/24 10:20:30.123 AM +0000"
    );
    assert_eq!(t.format("January 2, 2006 at 3pm"), "March 1, 2024 at 10am");
    assert_eq!(
        Object::display(&Time::from_unix(0, 0)),
        "1970-01-01 00:00:00 +0000 UTC"
    );
    // Dates before the epoch and leap days.
    assert_eq!(
        Time::from_unix(-86400, 0).format("2006-01-02"),
        "1969-12-31"
    );
    assert_eq!(
        Time::from_unix(951_782_400, 0).format("2006-01-02 002"),
        "2000-02-29 060"
    );
    let p = Time::parse("2006-01-02T15:04:05Z07:00", "2024-03-01T10:20:30-05:30").unwrap();
    assert_eq!(p.unix(), 1_709_288_430 + 5 * 3600 + 1800);
    assert_eq!(p.format("15:04 -07:00"), "10:20 -05:30");
    let e = Time::parse("2006-01-02", "2024-3-01").unwrap_err();
    assert!(e.to_string().contains("cannot parse"), "{e}");
}

#[test]
fn float_printing() {
    assert_eq!(fmt_float(1.5), "1.5");
    assert_eq!(fmt_float(1_000_000.0), "1e+06");
    assert_eq!(fmt_float(123_456.0), "123456");
    assert_eq!(fmt_float(0.0001), "0.0001");
    assert_eq!(fmt_float(0.00001), "1e-05");
    assert_eq!(fmt_float(-2.5e10), "-2.5e+10");
    assert_eq!(fmt_float(3.0), "3");
}

#[test]
fn printf_edge_cases() {
    let d = Value::Nil;
    assert_eq!(render("{{printf \"%d\" \"x\"}}", &d), "%!d(string=x)");
    assert_eq!(render("{{printf \"%s %s\" \"x\"}}", &d), "x %!s(MISSING)");
    assert_eq!(render("{{printf \"%s\" \"x\" 1}}", &d), "x%!(EXTRA int=1)");
    assert_eq!(
        render(
            "{{printf \"%8.3f|%-6d|%+d|%X|%c\" 3.14159 7 7 \"hi\" 65}}",
            &d
        ),
        "   3.142|7     |+7|6869|A"
    );
    assert_eq!(render("{{printf \"%v %v\" nil true}}", &d), "<nil> true");
    assert_eq!(
        render("{{printf \"%e %g\" 123456.789 0.5}}", &d),
        "1.234568e+05 0.5"
    );
}

#[test]
fn parse_errors_name_the_problem() {
    let e = parse_err("{{ .Foo");
    assert_eq!(e.kind(), ErrorKind::Parse);
    assert!(e.to_string().contains(":1:1: unclosed action"), "{e}");
    let e = parse_err("{{ if }}x{{end}}");
    assert!(e.to_string().contains("missing value for if"), "{e}");
    let e = parse_err("ab\n{{ .Foo }");
    assert!(e.to_string().contains(":2:"), "{e}");
    let e = parse_err("{{ .Foo } }}");
    assert!(e.to_string().contains("unexpected \"}\" in operand"), "{e}");
    let e = parse_err("{{ if .A }}x");
    assert!(e.to_string().contains("missing {{end}}"), "{e}");
    let e = parse_err("x{{ end }}");
    assert!(e.to_string().contains("unexpected {{end}}"), "{e}");
    let e = parse_err("{{ nosuchfunc 1 }}");
    assert!(
        e.to_string()
            .contains("function \"nosuchfunc\" not defined"),
        "{e}"
    );
    let e = parse_err("{{ break }}");
    assert!(e.to_string().contains("outside {{range}}"), "{e}");
    let e = parse_err("{{ (index .A 0 }}");
    assert!(e.to_string().contains("unclosed left paren"), "{e}");
    let e = parse_err("{{ \"abc }}");
    assert!(e.to_string().contains("unterminated quoted string"), "{e}");
    let e = parse_err("{{ }}");
    assert!(e.to_string().contains("missing value for command"), "{e}");
    let e = parse_err("{{ .A | 3 }}");
    assert!(e.to_string().contains("non executable command"), "{e}");
    let e = parse_err("{{/* unclosed");
    assert!(e.to_string().contains("unclosed comment"), "{e}");
    let e = parse_err("{{$n := 0}}{{range .L}}{{$n = add1}}{{end}}");
    assert!(e.to_string().contains("\"add1\" not defined"), "{e}");
}

#[test]
fn exec_errors_name_the_problem() {
    let e = render_err("{{ index .Layers 5 }}", &man());
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let s = e.to_string();
    assert!(s.contains("index out of range: 5"), "{s}");
    assert!(s.contains("<index .Layers 5>"), "{s}");
    let s = render_err("{{ .Foo }}", &man()).to_string();
    assert!(
        s.contains("executing at <.Foo>: can't evaluate field Foo"),
        "{s}"
    );
    let s = render_err("{{ .Digest.Foo }}", &man()).to_string();
    assert!(s.contains("can't evaluate field Foo in type string"), "{s}");
    let s = render_err("{{ $x }}", &man()).to_string();
    assert!(s.contains("undefined variable: $x"), "{s}");
    let s = render_err("{{ template \"nope\" }}", &man()).to_string();
    assert!(s.contains("no such template \"nope\""), "{s}");
    let s = render_err("{{ lt .Layers 1 }}", &man()).to_string();
    assert!(s.contains("non-comparable"), "{s}");
    let s = render_err("{{ len 3 }}", &man()).to_string();
    assert!(s.contains("len of type int"), "{s}");
    let s = render_err("{{ call .Digest }}", &man()).to_string();
    assert!(s.contains("not supported"), "{s}");
    let s = render_err("{{ .Digest 1 }}", &man()).to_string();
    assert!(s.contains("can't give argument to non-function"), "{s}");
    let s = render_err("{{ range 10000000 }}{{end}}", &man()).to_string();
    assert!(s.contains("limit"), "{s}");
    let s = render_err("{{ len }}", &man()).to_string();
    assert!(
        s.contains("wrong number of args for len: want 1 got 0"),
        "{s}"
    );
}

#[test]
fn recursion_is_bounded() {
    let s = render_err(
        "{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}",
        &Value::Nil,
    )
    .to_string();
    assert!(s.contains("maximum template depth"), "{s}");
    // Doubling recursion hits the step budget rather than running forever.
    let src = "{{define \"r\"}}{{template \"r\" .}}{{template \"r\" .}}{{end}}{{template \"r\" .}}";
    assert!(Template::parse(src).unwrap().render(&Value::Nil).is_err());
    let s = render_err(
        "{{range 1000000}}{{range 1000000}}{{end}}{{end}}",
        &Value::Nil,
    )
    .to_string();
    assert!(s.contains("steps"), "{s}");
    let s = render_err(
        "{{range 1000000}}{{printf \"%60000s\" \"\"}}{{end}}",
        &Value::Nil,
    );
    assert!(s.to_string().contains("output exceeded"), "{s}");
    let deep = "{{if true}}".repeat(200) + &"{{end}}".repeat(200);
    assert!(parse_err(&deep).to_string().contains("nested too deeply"));
}

#[test]
fn scoping_and_variables() {
    let d = man();
    assert_eq!(render("{{$ := 1}}{{$}}", &Value::Nil), "1");
    assert_eq!(
        render("{{with .Config}}{{$.Digest}}{{end}}", &d),
        "sha256:aaa"
    );
    assert_eq!(
        render("{{range .Layers}}{{$.Name}};{{end}}", &d),
        "registry.example.com/repo:v1;registry.example.com/repo:v1;"
    );
    // Variables declared in a block vanish at its end.
    let e = render_err("{{if true}}{{$y := 1}}{{end}}{{$y}}", &d).to_string();
    assert!(e.contains("undefined variable: $y"), "{e}");
    assert_eq!(
        render(
            "{{$v := \"a\"}}{{range .Layers}}{{$v = .Digest}}{{end}}{{$v}}",
            &d
        ),
        "sha256:l2"
    );
}

#[test]
fn template_is_send_sync_and_reusable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<Value>();
    let t = Template::parse("{{.Digest}}").unwrap();
    assert_eq!(t.render(&man()).unwrap(), "sha256:aaa");
    assert_eq!(t.render(&config()).unwrap(), "<no value>");
}

#[test]
fn plain_values() {
    let mut m = BTreeMap::new();
    m.insert(
        "b".to_string(),
        Value::List(vec![Value::Int(1), Value::Float(2.5), Value::Nil]),
    );
    m.insert("a".to_string(), Value::Bool(true));
    let v = Value::Map(m);
    assert_eq!(render("{{.}}", &v), "map[a:true b:[1 2.5 <nil>]]");
    assert_eq!(
        render("{{json .}}", &v),
        "{\"a\":true,\"b\":[1,2.5,null]}\n"
    );
    assert_eq!(render("{{.}}", &Value::Nil), "<no value>");
    assert_eq!(render("{{.}}", &Value::Json(serde_json::json!(5))), "5");
    assert_eq!(
        render("{{if .}}y{{else}}n{{end}}", &Value::String(String::new())),
        "n"
    );
    assert_eq!(
        render(
            "{{ index . 1 0 }}",
            &Value::Json(serde_json::json!([[1], [2, 3]]))
        ),
        "2"
    );
}

#[test]
fn go_zero_values_for_nil_maps_and_missing_keys() {
    let d = man();
    // String maps give "" for a missing key through `index`, as Go's map[string]string does.
    assert_eq!(render("[{{ index .Annotations \"nope\" }}]", &d), "[]");
    assert_eq!(
        render("[{{ index .Config.Labels \"nope\" }}]", &config()),
        "[]"
    );
    // A nil map or slice has length 0 and indexes to the zero value.
    assert_eq!(render("{{ len .Config.Annotations }}", &d), "0");
    assert_eq!(render("[{{ index .Config.Annotations \"x\" }}]", &d), "[]");
    assert_eq!(
        render(
            "{{ range .Config.Annotations }}x{{ else }}none{{ end }}",
            &d
        ),
        "none"
    );
}

#[test]
fn methods_with_arguments() {
    let s = render_err("{{ (time).Parse }}", &Value::Nil).to_string();
    assert!(
        s.contains("wrong number of args for Parse: want 2 got 0"),
        "{s}"
    );
    let s = render_err("{{ time.Parse \"2006\" \"x\" }}", &Value::Nil).to_string();
    assert!(s.contains("cannot parse"), "{s}");
    // The piped value becomes the method's last argument.
    assert_eq!(
        render(
            "{{ \"2006\" | (time.Parse \"2006-01-02\" \"2021-07-04\").Format }}",
            &Value::Nil
        ),
        "2021"
    );
}

#[test]
fn break_in_range_else_reaches_outer_range() {
    let d = man();
    let src = "{{range .Layers}}{{.Size}}{{range .Annotations}}{{else}}{{break}}{{end}}x{{end}}";
    assert_eq!(render(src, &d), "100");
    let src = "{{range .Layers}}{{range .Annotations}}{{else}}{{continue}}{{end}}x{{end}}.";
    assert_eq!(render(src, &d), ".");
}

#[test]
fn trim_markers_and_numbers() {
    let d = Value::Nil;
    assert_eq!(render("{{-3}}", &d), "-3");
    assert_eq!(render("a \n\t{{- 3 -}} \n b", &d), "a3b");
    assert_eq!(render("a {{3 -}} b", &d), "a 3b");
    assert_eq!(
        render(
            "{{ 1_000 }} {{ 0o17 }} {{ 0b101 }} {{ 017 }} {{ +5 }} {{ .5 }}",
            &d
        ),
        "1000 15 5 15 5 0.5"
    );
    assert_eq!(render("{{ \"\\u00e9\\x41\\t|\" }}", &d), "éA\t|");
    assert_eq!(render("{{ '\\n' }} {{ '\\'' }}", &d), "10 39");
    assert!(parse_err("{{ 1x }}")
        .to_string()
        .contains("bad number syntax"));
    let e = parse_err("{{ .A\"x\" }}").to_string();
    assert!(e.contains(r#"unexpected "\"x\"" in operand"#), "{e}");
    let e = parse_err("{{ not(.A) }}").to_string();
    assert!(e.contains(r#"unexpected "(" in operand"#), "{e}");
}

#[test]
fn truncated_and_mutated_templates_never_panic() {
    // Every prefix and every single-character deletion of the corpus must parse or fail
    // cleanly, and render or fail cleanly.
    let data = [man(), config()];
    let mut checked = 0;
    for (src, _) in MANIFEST_CASES.iter().chain(CONFIG_CASES) {
        let bounds: Vec<usize> = src.char_indices().map(|(i, _)| i).collect();
        for &i in &bounds {
            let mut del = src.to_string();
            del.remove(i);
            for cand in [&src[..i], del.as_str()] {
                if let Ok(t) = Template::parse(cand) {
                    for d in &data {
                        let _ = t.render(d);
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}
