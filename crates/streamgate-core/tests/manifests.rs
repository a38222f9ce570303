//! Manifest token propagation on real-world playlist and MPD shapes.

use streamgate_core::manifests::{dash, hls, Propagation};

fn propagation() -> Propagation {
    Propagation { host: "gate.example.com".into(), param: "token".into(), credential: "TKN".into() }
}

/// Removing every credential the rewrite added gives back the input, byte for byte.
fn assert_only_credentials_added(input: &str, output: &str) {
    let stripped = output.replace("&amp;token=TKN", "").replace("?token=TKN", "").replace("&token=TKN", "");
    // A URI whose only query was ours may have had other params before: "?a=1&token" → "?a=1".
    assert_eq!(stripped, input);
}

const MASTER: &str = r#"#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
# a comment that mentions URI="not-a-tag.m3u8"

#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key65",KEYFORMAT="com.apple.streamingkeydelivery"
#EXT-X-SESSION-DATA:DATA-ID="com.example.title",URI="title.json"
#EXT-X-CONTENT-STEERING:SERVER-URI="/steering?video=1",PATHWAY-ID="CDN-A"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English, US",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="audio/en/index.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English",INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.640028,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aac",CLOSED-CAPTIONS="cc"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS="avc1.42e01e,mp4a.40.2"
https://cdn.thirdparty.example/360p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=150000,URI="720p/iframes.m3u8"
"#;

#[test]
fn hls_master_playlist() {
    let out = hls::rewrite(MASTER, &propagation());
    let expected = MASTER
        .replace(r#"URI="title.json""#, r#"URI="title.json?token=TKN""#)
        .replace(r#"SERVER-URI="/steering?video=1""#, r#"SERVER-URI="/steering?video=1&token=TKN""#)
        .replace(r#"URI="audio/en/index.m3u8""#, r#"URI="audio/en/index.m3u8?token=TKN""#)
        .replace("\n720p/index.m3u8\n", "\n720p/index.m3u8?token=TKN\n")
        .replace(r#"URI="720p/iframes.m3u8""#, r#"URI="720p/iframes.m3u8?token=TKN""#);
    assert_eq!(out, expected);
    // Never to third parties or key systems; comments untouched.
    assert!(out.contains("\nhttps://cdn.thirdparty.example/360p/index.m3u8\n"));
    assert!(out.contains(r#"URI="skd://key65""#));
    assert!(out.contains(r#"# a comment that mentions URI="not-a-tag.m3u8""#));
    assert_only_credentials_added(MASTER, &out);
}

const LL_HLS: &str = "#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-VERSION:9\r\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24.0\r\n\
#EXT-X-PART-INF:PART-TARGET=0.33334\r\n#EXT-X-MEDIA-SEQUENCE:266\r\n\
#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"https://gate.example.com/keys/k1?kid=1&token=stale\",IV=0x1234\r\n\
#EXTINF:4.00008,\r\nfileSequence266.mp4\r\n\
#EXT-X-PART:DURATION=0.33334,URI=\"filePart267.0.mp4\",INDEPENDENT=YES\r\n\
#EXT-X-BYTERANGE:1000@0\r\nseg.mp4#frag\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAAAAAAAAAAAAAAAAAAAAA==\"\r\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart267.1.mp4\"\r\n\
#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php?_HLS_msn=273\",LAST-MSN=273,LAST-PART=2\r\n";

#[test]
fn ll_hls_media_playlist_with_crlf() {
    let out = hls::rewrite(LL_HLS, &propagation());
    for expected in [
        "#EXT-X-MAP:URI=\"init.mp4?token=TKN\",BYTERANGE=\"720@0\"\r\n",
        "URI=\"https://gate.example.com/keys/k1?kid=1&token=TKN\",IV=0x1234\r\n",
        "\r\nfileSequence266.mp4?token=TKN\r\n",
        "URI=\"filePart267.0.mp4?token=TKN\",INDEPENDENT=YES\r\n",
        "\r\nseg.mp4?token=TKN#frag\r\n",
        "URI=\"data:text/plain;base64,AAAAAAAAAAAAAAAAAAAAAA==\"\r\n",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart267.1.mp4?token=TKN\"\r\n",
        "URI=\"../1M/waitForMSN.php?_HLS_msn=273&token=TKN\",LAST-MSN=273",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    assert!(!out.contains("stale"), "an old credential is replaced, not duplicated");
    assert_eq!(out.lines().count(), LL_HLS.lines().count());
    assert_eq!(out.matches("\r\n").count(), LL_HLS.matches("\r\n").count());
}

const MPD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- <SegmentURL media="in-a-comment.m4s"/> -->
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S">
  <Location>https://gate.example.com/live/a/manifest.mpd?x=1&amp;y=2</Location>
  <PatchLocation ttl="60">patch.mpp</PatchLocation>
  <BaseURL>https://gate.example.com/live/a/</BaseURL>
  <Period id="p0">
    <AdaptationSet mimeType="video/mp4">
      <BaseURL>video/</BaseURL>
      <SegmentTemplate timescale="1000" media="chunk-$RepresentationID$-$Number%05d$.m4s" initialization='init-$RepresentationID$.m4s' startNumber="1"/>
      <Representation id="v0" bandwidth="48000"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <BaseURL>https://cdn.thirdparty.example/audio/</BaseURL>
      <SegmentTemplate media="a-$Number$.m4s" initialization="a-init.m4s"/>
    </AdaptationSet>
  </Period>
  <Period id="p1">
    <AdaptationSet>
      <Representation id="r1">
        <BaseURL>r1/</BaseURL>
        <SegmentList duration="2">
          <Initialization sourceURL="init.mp4" range="0-719"/>
          <RepresentationIndex sourceURL="index.sidx"/>
          <SegmentURL media="s1.m4s" mediaRange="720-2000"/>
          <SegmentURL media="https://cdn.thirdparty.example/s2.m4s"/>
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#;

#[test]
fn dash_multi_period_with_base_urls() {
    let out = dash::rewrite(MPD, &propagation());
    for expected in [
        "<Location>https://gate.example.com/live/a/manifest.mpd?x=1&amp;y=2&amp;token=TKN</Location>",
        r#"<PatchLocation ttl="60">patch.mpp?token=TKN</PatchLocation>"#,
        r#"media="chunk-$RepresentationID$-$Number%05d$.m4s?token=TKN" initialization='init-$RepresentationID$.m4s?token=TKN'"#,
        r#"<Initialization sourceURL="init.mp4?token=TKN" range="0-719"/>"#,
        r#"<RepresentationIndex sourceURL="index.sidx?token=TKN"/>"#,
        r#"<SegmentURL media="s1.m4s?token=TKN" mediaRange="720-2000"/>"#,
    ] {
        assert!(out.contains(expected), "missing {expected}\nin\n{out}");
    }
    // Under the third-party BaseURL nothing gets the credential, nor absolute foreign URLs.
    assert!(out.contains(r#"<SegmentTemplate media="a-$Number$.m4s" initialization="a-init.m4s"/>"#), "{out}");
    assert!(out.contains("<BaseURL>https://cdn.thirdparty.example/audio/</BaseURL>"));
    assert!(out.contains(r#"<SegmentURL media="https://cdn.thirdparty.example/s2.m4s"/>"#));
    assert!(out.contains(r#"<!-- <SegmentURL media="in-a-comment.m4s"/> -->"#));
    assert_only_credentials_added(MPD, &out);
}

#[test]
fn a_live_mpd_without_location_gets_one_that_carries_the_credential() {
    let url = "https://gate.example.com/live/a/manifest.mpd?lang=en";
    let live = "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"dynamic\" minimumUpdatePeriod=\"PT2S\">\n\t<ProgramInformation>\n\t</ProgramInformation>\n\t<BaseURL>media/</BaseURL>\n\t<ServiceDescription id=\"0\"/>\n\t<Period id=\"0\">\n\t\t<AdaptationSet><SegmentTemplate media=\"$Number$.m4s\"/></AdaptationSet>\n\t</Period>\n</MPD>\n";
    let out = dash::rewrite_with_refresh(live, &propagation(), url);
    // After ProgramInformation and BaseURL, before the first element that must follow it,
    // indented like that element.
    let expected = "<BaseURL>media/?token=TKN</BaseURL>\n\t<Location>https://gate.example.com/live/a/manifest.mpd?lang=en&amp;token=TKN</Location>\n\t<ServiceDescription";
    assert!(out.contains(expected), "{out}");
    assert_eq!(out.matches("<Location>").count(), 1);
    let without =
        out.replace("<Location>https://gate.example.com/live/a/manifest.mpd?lang=en&amp;token=TKN</Location>\n\t", "");
    assert_only_credentials_added(live, &without);

    // A static MPD is not refreshed: unchanged but for the credentials.
    let vod = live.replace("type=\"dynamic\"", "type=\"static\"");
    assert_eq!(dash::rewrite_with_refresh(&vod, &propagation(), url), dash::rewrite(&vod, &propagation()));
    // A live MPD with its own Location keeps it (rewritten), and gets no second one.
    let own =
        live.replace("<ServiceDescription", "<Location>https://gate.example.com/x.mpd</Location><ServiceDescription");
    let out = dash::rewrite_with_refresh(&own, &propagation(), url);
    assert_eq!(out.matches("<Location>").count(), 1, "{out}");
    assert!(out.contains("<Location>https://gate.example.com/x.mpd?token=TKN</Location>"));
    // A manifest URL on another host is never given the credential, nor added.
    let foreign = dash::rewrite_with_refresh(live, &propagation(), "https://other.example/m.mpd");
    assert!(!foreign.contains("<Location>"), "{foreign}");
}

#[test]
fn dash_foreign_base_at_the_top_keeps_everything_below_clean() {
    let mpd = r#"<MPD><BaseURL>https://cdn.other.example/</BaseURL><Period><BaseURL>p/</BaseURL><AdaptationSet><SegmentTemplate media="$Number$.m4s"/></AdaptationSet></Period></MPD>"#;
    assert_eq!(dash::rewrite(mpd, &propagation()), mpd);
    // An absolute BaseURL on our host brings a period back in scope.
    let mixed = r#"<MPD><BaseURL>https://cdn.other.example/</BaseURL><Period><BaseURL>https://gate.example.com/p/</BaseURL><AdaptationSet><SegmentTemplate media="$Number$.m4s"/></AdaptationSet></Period></MPD>"#;
    assert!(dash::rewrite(mixed, &propagation()).contains(r#"media="$Number$.m4s?token=TKN""#));
}

#[test]
fn demo_stream_manifests_rewrite_cleanly() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/origin");
    for (file, dash_format) in [
        ("hls/master.m3u8", false),
        ("hls/ts/index.m3u8", false),
        ("hls/fmp4/index.m3u8", false),
        ("dash/manifest.mpd", true),
    ] {
        let input = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let out =
            if dash_format { dash::rewrite(&input, &propagation()) } else { hls::rewrite(&input, &propagation()) };
        assert!(out.contains("token=TKN"), "{file}");
        assert_only_credentials_added(&input, &out);
        if !dash_format {
            // Every URI line, and every tag with a URI attribute, now carries the credential.
            for line in out.lines().filter(|l| !l.trim().is_empty() && (!l.starts_with('#') || l.contains("URI=\""))) {
                assert!(line.contains("token=TKN"), "{file}: {line}");
            }
        }
    }
}

#[test]
fn garbage_never_panics() {
    for junk in [
        "",
        "<",
        "<<<",
        "<a b=\"",
        "<SegmentURL media='x",
        "#EXT-X-KEY:",
        "#EXT-X-KEY:URI=\"",
        "#EXT-X-KEY:URI=",
        "\r\r\n",
        "<!--",
        "<![CDATA[",
    ] {
        let _ = hls::rewrite(junk, &propagation());
        let _ = dash::rewrite(junk, &propagation());
    }
}

#[test]
fn vod_manifests_know_how_long_they_play_and_live_ones_do_not() {
    use streamgate_core::manifests::{presentation_seconds, ManifestKind};
    let vod = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6.006,\na.ts\n#EXTINF:6.006,title\nb.ts\n#EXTINF:2.5\nc.ts\n#EXT-X-ENDLIST\n";
    assert_eq!(presentation_seconds(ManifestKind::Hls, vod), Some(15));
    let live = vod.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "").replace("#EXT-X-ENDLIST\n", "");
    assert_eq!(presentation_seconds(ManifestKind::Hls, &live), None);
    assert_eq!(presentation_seconds(ManifestKind::Hls, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"), None);
    assert_eq!(
        presentation_seconds(ManifestKind::Hls, "#EXTM3U\n#EXTINF:NaN,\n#EXTINF:-5,\n#EXTINF:1e400,\n#EXT-X-ENDLIST"),
        Some(0)
    );

    let mpd =
        |attrs: &str| format!("<?xml version=\"1.0\"?><!-- <MPD type=\"dynamic\"> --><MPD {attrs}><Period/></MPD>");
    assert_eq!(
        presentation_seconds(ManifestKind::Dash, &mpd(r#"type="static" mediaPresentationDuration="PT1H2M3.5S""#)),
        Some(3_724)
    );
    assert_eq!(presentation_seconds(ManifestKind::Dash, &mpd(r#"mediaPresentationDuration='P1DT0.5S'"#)), Some(86_401));
    assert_eq!(
        presentation_seconds(ManifestKind::Dash, &mpd(r#"type="dynamic" mediaPresentationDuration="PT8S""#)),
        None
    );
    assert_eq!(presentation_seconds(ManifestKind::Dash, &mpd(r#"type="static""#)), None);
    for junk in ["P", "PT", "PT5", "PTxS", "P1Y", "PT1S2"] {
        let attrs = format!(r#"mediaPresentationDuration="{junk}""#);
        assert!(matches!(presentation_seconds(ManifestKind::Dash, &mpd(&attrs)), None | Some(0)), "{junk}");
    }
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/origin/dash/manifest.mpd")).unwrap();
    assert_eq!(presentation_seconds(ManifestKind::Dash, &demo), Some(8));
}

// ---------------------------------------------------------------------------------------
// Real-world fixtures, checked against a model player: URIs resolved by the `url` crate
// (the WHATWG parser), independently of the rewriter.

use url::Url;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/manifests/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// How many credentials a resolved URL carries.
fn credentials(url: &Url) -> usize {
    url.query_pairs().filter(|(k, _)| k == "token").count()
}

fn on_gate(url: &Url) -> bool {
    url.host_str() == Some("gate.example.com") && url.port().is_none() && url.username().is_empty()
}

/// One URI as a player reads it (value after substitution or XML decoding) and every URL
/// it may be resolved to.
struct Fetch {
    value: String,
    urls: Vec<Url>,
}

/// (b) every URI fetched only from the gate carries exactly one credential; (c) a URI that
/// may be fetched anywhere else carries none; and nothing else in the text got one.
fn assert_fetches(name: &str, output: &str, fetches: &[Fetch]) {
    let mut added = 0;
    for fetch in fetches {
        assert!(!fetch.urls.is_empty(), "{name}: {} resolves nowhere", fetch.value);
        if fetch.urls.iter().all(on_gate) {
            for url in &fetch.urls {
                assert_eq!(credentials(url), 1, "{name}: {url} (from {:?}) must carry one credential", fetch.value);
            }
            added += 1;
        } else {
            assert!(!fetch.value.contains("token=TKN"), "{name}: leaked to {:?} via {:?}", fetch.urls, fetch.value);
        }
    }
    assert_eq!(output.matches("token=TKN").count(), added, "{name}: credentials outside fetched URIs");
}

// ---- HLS model: tags and attributes players fetch (RFC 8216bis), variables as hls.js.

const HLS_URI_TAGS: [(&str, &[&str]); 12] = [
    ("EXT-X-MEDIA", &["URI"]),
    ("EXT-X-I-FRAME-STREAM-INF", &["URI"]),
    ("EXT-X-IMAGE-STREAM-INF", &["URI"]),
    ("EXT-X-KEY", &["URI"]),
    ("EXT-X-SESSION-KEY", &["URI"]),
    ("EXT-X-MAP", &["URI"]),
    ("EXT-X-PART", &["URI"]),
    ("EXT-X-PRELOAD-HINT", &["URI"]),
    ("EXT-X-RENDITION-REPORT", &["URI"]),
    ("EXT-X-SESSION-DATA", &["URI"]),
    ("EXT-X-CONTENT-STEERING", &["SERVER-URI"]),
    ("EXT-X-DATERANGE", &["X-ASSET-URI", "X-ASSET-LIST"]),
];

fn hls_attributes(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().to_owned();
        rest = &rest[eq + 1..];
        let (value, len) = match rest.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"').unwrap();
                (q[..end].to_owned(), end + 2)
            }
            None => {
                let end = rest.find(',').unwrap_or(rest.len());
                (rest[..end].to_owned(), end)
            }
        };
        out.push((name, value));
        rest = rest[len..].strip_prefix(',').unwrap_or("");
    }
    out
}

/// Every URI an HLS player fetches from `playlist` loaded from `base`. IMPORTed values are
/// taken at their worst: another host.
fn hls_fetches(playlist: &str, base: &Url) -> Vec<Fetch> {
    let mut variables: Vec<(String, String)> = Vec::new();
    let substitute = |variables: &[(String, String)], text: &str| {
        let mut text = text.to_owned();
        for (name, value) in variables {
            text = text.replace(&format!("{{${name}}}"), value);
        }
        text
    };
    let mut fetches = Vec::new();
    let mut push = |value: String| {
        let urls = base.join(&value).into_iter().collect();
        fetches.push(Fetch { value, urls });
    };
    let body = playlist.trim_start_matches('\u{feff}');
    for line in body.split(['\n', '\r']) {
        let line = line.trim_start_matches([' ', '\t']);
        if line.trim().is_empty() {
            continue;
        }
        let Some(tag) = line.strip_prefix('#') else {
            push(substitute(&variables, line));
            continue;
        };
        let (name, list) = tag.split_once(':').unwrap_or((tag, ""));
        // LHLS (community low-latency HLS): the tag's value is the URI of a coming segment.
        if name == "EXT-X-PREFETCH" {
            push(substitute(&variables, list));
            continue;
        }
        let attributes = hls_attributes(list);
        let get = |n: &str| attributes.iter().find(|(a, _)| a == n).map(|(_, v)| v.clone());
        if name == "EXT-X-DEFINE" {
            if let (Some(name), Some(value)) = (get("NAME"), get("VALUE")) {
                variables.push((name, value));
            } else if let Some(name) = get("QUERYPARAM") {
                let value = base.query_pairs().find(|(k, _)| *k == name).unwrap().1.into_owned();
                variables.push((name, value));
            } else if let Some(name) = get("IMPORT") {
                variables.push((name, "https://imported.invalid".into()));
            }
        }
        for (tag, names) in HLS_URI_TAGS {
            if tag == name {
                for (attribute, value) in &attributes {
                    if names.contains(&attribute.as_str()) {
                        push(substitute(&variables, value));
                    }
                }
            }
        }
    }
    fetches
}

#[test]
fn hls_fixtures_give_every_gate_uri_one_credential_and_no_other_uri_any() {
    for (name, base) in [
        ("apple_master.m3u8", "https://gate.example.com/vod/bipbop/master/master.m3u8"),
        ("ll_hls_media.m3u8", "https://gate.example.com/live/2M/prog_index.m3u8?_HLS_msn=1031&_HLS_part=0"),
        ("define_media.m3u8", "https://gate.example.com/vod/define/720p.m3u8?sig=s3cr3t"),
        ("interstitials.m3u8", "https://gate.example.com/vod/show/prog_index.m3u8"),
        ("steering_master.m3u8", "https://gate.example.com/vod/abc/master.m3u8"),
        ("lhls_prefetch.m3u8", "https://gate.example.com/live/ch1/index.m3u8"),
    ] {
        let input = fixture(name);
        let output = hls::rewrite(&input, &propagation());
        assert_only_credentials_added(&input, &output);
        let fetches = hls_fetches(&output, &Url::parse(base).unwrap());
        assert_fetches(name, &output, &fetches);
        assert!(fetches.iter().any(|f| f.value.contains("token=TKN")), "{name}: nothing rewritten");
    }
}

#[test]
fn hls_fixture_details() {
    let out = hls::rewrite(&fixture("apple_master.m3u8"), &propagation());
    for expected in [
        r#"URI="../meta/lyrics.json?token=TKN""#,
        r#"URI="../audio/fr/prog_index.m3u8?token=TKN""#,
        r#"URI="/media0/audio/ec3/prog_index.m3u8?token=TKN""#,
        "\nv9/prog_index.m3u8?token=TKN\n",
        "\n/media0/v9/prog_index.m3u8?token=TKN\n",
        "\nhttps://cdn.partner.example/bipbop/v2/prog_index.m3u8\n",
        r#"URI="../trick/v9/iframe_index.m3u8?token=TKN""#,
        r#"URI="images/320x180/index.m3u8?token=TKN""#,
        r#"URI="https://subs.partner.example/de/prog_index.m3u8""#,
        r#"URI="skd://twelve""#,
    ] {
        assert!(out.contains(expected), "missing {expected:?}");
    }
    let out = hls::rewrite(&fixture("define_media.m3u8"), &propagation());
    for expected in [
        "#EXT-X-MAP:URI=\"{$seg}/init.mp4?token=TKN\"",
        "URI=\"{$origin}/keys/k1.key?sig={$sig}&token=TKN\"",
        "\n{$seg}/seg-00002.m4s?sig={$sig}&token=TKN\n",
        "\n{$origin}/{$seg}/seg-00003.m4s?token=TKN\n",
        "\n{$cdn}/vod/define/{$seg}/seg-00004.m4s\n",
        "\n{$host}/vod/define/{$seg}/seg-00005.m4s\n",
        "\n//{$host}/vod/define/seg-00006.m4s\n",
        "\n/vod/{$host}/seg-00007.m4s?token=TKN\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    let out = hls::rewrite(&fixture("interstitials.m3u8"), &propagation());
    assert!(out.contains(r#"X-ASSET-URI="/ads/house/promo-15s/master.m3u8?token=TKN""#));
    assert!(out.contains(r#"X-ASSET-LIST="asset-list.json?break=2&token=TKN""#));
    assert!(out.contains(r#"X-ASSET-LIST="https://ads.adserver.example/v1/pod?break=1&duration=30","#));
    assert!(
        out.contains(r#"X-COM-EXAMPLE-URI="https://gate.example.com/not-fetched""#),
        "client attributes are not URIs players fetch"
    );
    let input = fixture("steering_master.m3u8");
    let out = hls::rewrite(&input, &propagation());
    assert!(out.starts_with("\u{feff}#EXTM3U\r\n"));
    assert!(out.contains("SERVER-URI=\"/steering/manifest.json?video=abc&token=TKN\""));
    assert!(out.contains("\r\n  #EXT-X-STREAM-INF:"), "indented tag kept as is");
    assert!(out.contains("\r\n\t#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=80000,CODECS=\"avc1.4d401f\",RESOLUTION=1280x720,URI=\"video/720/iframes.m3u8?token=TKN\""));
    assert_eq!(out.matches("\r\n").count(), input.matches("\r\n").count());
}

#[test]
fn hls_lines_end_where_players_end_them_and_names_are_case_sensitive() {
    let p = propagation();
    // A lone CR ends a line for hls.js and Java readers: the second URI is its own line.
    assert_eq!(hls::rewrite("seg.ts\r//evil.example/x\n", &p), "seg.ts?token=TKN\r//evil.example/x\n");
    assert_eq!(hls::rewrite("a.ts\r\n\rb.ts", &p), "a.ts?token=TKN\r\n\rb.ts?token=TKN");
    // Attribute and tag names are case-sensitive; unknown tags are not fetched.
    for untouched in [
        "#EXT-X-KEY:METHOD=AES-128,uri=\"k.key\"\n",
        "#ext-x-key:METHOD=AES-128,URI=\"k.key\"\n",
        "#EXT-X-FUTURE-TAG:URI=\"x.m3u8\"\n",
        // A quoted value followed by more text: players split it differently.
        "#EXT-X-KEY:METHOD=AES-128,URI=\"/k\"//evil.example/x\",IV=0x1\n",
        "# a comment with URI=\"x.m3u8\"\n",
        "\u{feff}\n",
    ] {
        assert_eq!(hls::rewrite(untouched, &p), untouched);
    }
    assert_eq!(
        hls::rewrite("\u{feff}#EXTM3U\n \t#EXT-X-MAP:URI=\"init.mp4\"\n", &p),
        "\u{feff}#EXTM3U\n \t#EXT-X-MAP:URI=\"init.mp4?token=TKN\"\n"
    );
    // Attributes after a bad one are left alone; those before it are rewritten.
    assert_eq!(
        hls::rewrite("#EXT-X-DATERANGE:X-ASSET-URI=\"a.m3u8\",X-ASSET-LIST=\"b\"c\",X=1\n", &p),
        "#EXT-X-DATERANGE:X-ASSET-URI=\"a.m3u8?token=TKN\",X-ASSET-LIST=\"b\"c\",X=1\n"
    );
}

#[test]
fn hls_unquoted_uri_attributes_are_rewritten_and_stay_unquoted() {
    let p = propagation();
    for (input, expected) in [
        ("#EXT-X-MAP:URI=init.mp4\n", "#EXT-X-MAP:URI=init.mp4?token=TKN\n"),
        (
            "#EXT-X-MAP:URI=init.mp4,BYTERANGE=\"720@0\"\r\n",
            "#EXT-X-MAP:URI=init.mp4?token=TKN,BYTERANGE=\"720@0\"\r\n",
        ),
        (
            "#EXT-X-KEY:METHOD=AES-128,URI=https://gate.example.com/k?kid=1&token=old,IV=0x1\n",
            "#EXT-X-KEY:METHOD=AES-128,URI=https://gate.example.com/k?kid=1&token=TKN,IV=0x1\n",
        ),
        (
            "#EXT-X-DATERANGE:ID=\"a\",X-ASSET-URI=https://gate.example.com/unquoted.m3u8\n",
            "#EXT-X-DATERANGE:ID=\"a\",X-ASSET-URI=https://gate.example.com/unquoted.m3u8?token=TKN\n",
        ),
        (
            "#EXT-X-PART:DURATION=1,URI=p.mp4#x,INDEPENDENT=YES\n",
            "#EXT-X-PART:DURATION=1,URI=p.mp4?token=TKN#x,INDEPENDENT=YES\n",
        ),
        ("#EXT-X-MAP:URI=init.mp4  ,X=1\n", "#EXT-X-MAP:URI=init.mp4?token=TKN  ,X=1\n"),
        (
            "#EXT-X-DEFINE:NAME=\"g\",VALUE=\"https://gate.example.com\"\n#EXT-X-MAP:URI={$g}/init.mp4\n",
            "#EXT-X-DEFINE:NAME=\"g\",VALUE=\"https://gate.example.com\"\n#EXT-X-MAP:URI={$g}/init.mp4?token=TKN\n",
        ),
        // Quoted and unquoted in one tag.
        (
            "#EXT-X-DATERANGE:X-ASSET-URI=a.m3u8,X-ASSET-LIST=\"b.json\"\n",
            "#EXT-X-DATERANGE:X-ASSET-URI=a.m3u8?token=TKN,X-ASSET-LIST=\"b.json?token=TKN\"\n",
        ),
    ] {
        assert_eq!(hls::rewrite(input, &p), expected, "{input:?}");
    }
    for untouched in [
        "#EXT-X-MAP:URI=\n",
        "#EXT-X-MAP:URI=,BYTERANGE=\"1@0\"\n",
        "#EXT-X-MAP:URI=   \n",
        "#EXT-X-MAP:URI=https://evil.example/init.mp4?token=old\n",
        "#EXT-X-KEY:METHOD=AES-128,URI=//evil.example/k,IV=0x1\n",
        "#EXT-X-KEY:METHOD=AES-128,URI=skd://gate.example.com/k\n",
        "#EXT-X-MAP:URI=https://gate.example.com.evil.example/i.mp4\n",
        "#EXT-X-MAP:URI={$unknown}/init.mp4\n",
        // A quote inside: parsers disagree on where the value ends.
        "#EXT-X-MAP:URI=init\".mp4\n",
        // Not URI attributes, or not of a known tag.
        "#EXT-X-KEY:METHOD=AES-128,uri=k.key\n",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=aac,NAME=en\n",
        "#EXT-X-FUTURE-TAG:URI=x.m3u8\n",
        "#EXT-X-DATERANGE:ID=\"a\",X-COM-EXAMPLE-URI=https://gate.example.com/x\n",
    ] {
        assert_eq!(hls::rewrite(untouched, &p), untouched);
    }
    // A credential that would add a `,` or `"` changes how the list parses: left unquoted
    // values alone (quoted ones still get it).
    for credential in ["a,b", "a\"b"] {
        let odd = Propagation { credential: credential.into(), ..propagation() };
        let input = "#EXT-X-MAP:URI=init.mp4,BYTERANGE=\"720@0\"\n";
        assert_eq!(hls::rewrite(input, &odd), input, "{credential:?}");
        let quoted = hls::rewrite("#EXT-X-MAP:URI=\"init.mp4\"\n", &odd);
        assert_eq!(quoted, format!("#EXT-X-MAP:URI=\"init.mp4?token={credential}\"\n"));
    }
    let odd_name = Propagation { param: "t,k".into(), ..propagation() };
    assert_eq!(hls::rewrite("#EXT-X-MAP:URI=init.mp4\n", &odd_name), "#EXT-X-MAP:URI=init.mp4\n");
    let huge = format!("#EXT-X-MAP:URI={},BYTERANGE=\"1@0\"\n", "a/".repeat(2_500_000));
    let out = hls::rewrite(&huge, &p);
    assert_eq!(out.len(), huge.len() + "?token=TKN".len());
    assert!(out.ends_with("a/?token=TKN,BYTERANGE=\"1@0\"\n"));
}

#[test]
fn hls_prefetch_uris_are_rewritten_like_uri_lines() {
    let p = propagation();
    let out = hls::rewrite(&fixture("lhls_prefetch.m3u8"), &p);
    for expected in [
        "\n#EXT-X-PREFETCH:chunk_7312.ts?token=TKN\n",
        "\n#EXT-X-PREFETCH:https://gate.example.com/live/ch1/chunk_7313.ts?sig=c3d4&token=TKN\n",
        "\n#EXT-X-PREFETCH:https://edge2.partner.example/live/ch1/chunk_7314.ts\n",
        "\n#EXT-X-PREFETCH-DISCONTINUITY\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    for (input, expected) in [
        ("#EXT-X-PREFETCH:a.ts?token=old\r\n", "#EXT-X-PREFETCH:a.ts?token=TKN\r\n"),
        (
            "#EXT-X-PREFETCH:https://gate.example.com/a.ts?token=old&x=1\n",
            "#EXT-X-PREFETCH:https://gate.example.com/a.ts?x=1&token=TKN\n",
        ),
        ("#EXT-X-PREFETCH:/live/a.ts#t=1\n", "#EXT-X-PREFETCH:/live/a.ts?token=TKN#t=1\n"),
        (
            "#EXT-X-DEFINE:NAME=\"g\",VALUE=\"https://gate.example.com\"\n#EXT-X-PREFETCH:{$g}/a.ts\n",
            "#EXT-X-DEFINE:NAME=\"g\",VALUE=\"https://gate.example.com\"\n#EXT-X-PREFETCH:{$g}/a.ts?token=TKN\n",
        ),
    ] {
        assert_eq!(hls::rewrite(input, &p), expected, "{input:?}");
    }
    for untouched in [
        "#EXT-X-PREFETCH:\n",
        "#EXT-X-PREFETCH:   \n",
        "#EXT-X-PREFETCH\n",
        "#EXT-X-PREFETCH:https://evil.example/a.ts?token=old\n",
        "#EXT-X-PREFETCH://evil.example/a.ts\n",
        "#EXT-X-PREFETCH:https://user@gate.example.com/a.ts\n",
        "#EXT-X-PREFETCH:{$unknown}/a.ts\n",
        "#ext-x-prefetch:a.ts\n",
        "#EXT-X-PREFETCH-DISCONTINUITY:a.ts\n",
    ] {
        assert_eq!(hls::rewrite(untouched, &p), untouched);
    }
    let huge = format!("#EXT-X-PREFETCH:{}\n", "a/".repeat(2_500_000));
    assert_eq!(hls::rewrite(&huge, &p).len(), huge.len() + "?token=TKN".len());
}

#[test]
fn hls_variables_defined_twice_or_later_are_unknown() {
    let p = propagation();
    let twice = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"h\",VALUE=\"https://gate.example.com\"\n#EXT-X-DEFINE:NAME=\"h\",VALUE=\"https://evil.example\"\n{$h}/a.ts\n";
    assert_eq!(hls::rewrite(twice, &p), twice);
    let later = "#EXTM3U\n{$h}/a.ts\n#EXT-X-DEFINE:NAME=\"h\",VALUE=\"https://gate.example.com\"\n{$h}/b.ts\n";
    assert_eq!(
        hls::rewrite(later, &p),
        "#EXTM3U\n{$h}/a.ts\n#EXT-X-DEFINE:NAME=\"h\",VALUE=\"https://gate.example.com\"\n{$h}/b.ts?token=TKN\n"
    );
    let nested = "#EXT-X-DEFINE:NAME=\"a\",VALUE=\"x\"\n#EXT-X-DEFINE:NAME=\"h\",VALUE=\"{$a}\"\n{$h}/a.ts\n";
    assert_eq!(hls::rewrite(nested, &p), nested);
}

// ---- DASH model: a minimal XML reader and BaseURL resolution as dash.js and Shaka do it.

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Node>,
}

impl Element {
    fn local(&self) -> &str {
        self.name.rsplit(':').next().unwrap()
    }
    fn text(&self) -> String {
        self.children.iter().map(|c| if let Node::Text(t) = c { t.as_str() } else { "" }).collect()
    }
    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| if let Node::Element(e) = c { Some(e) } else { None })
    }
}

fn xml_decode(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let end = rest[amp..].find(';').unwrap() + amp;
        let name = &rest[amp + 1..end];
        out.push(match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ if name.starts_with("#x") => char::from_u32(u32::from_str_radix(&name[2..], 16).unwrap()).unwrap(),
            _ => char::from_u32(name[1..].parse().unwrap()).unwrap(),
        });
        rest = &rest[end + 1..];
    }
    out + rest
}

/// Parses well-formed XML (the fixtures) into its root element.
fn parse_xml(xml: &str) -> Element {
    let mut stack = vec![Element { name: String::new(), attributes: vec![], children: vec![] }];
    let mut rest = xml;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        if lt > 0 {
            stack.last_mut().unwrap().children.push(Node::Text(xml_decode(&rest[..lt])));
            rest = &rest[lt..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").unwrap();
            stack.last_mut().unwrap().children.push(Node::Text(r[..end].to_owned()));
            rest = &r[end + 3..];
        } else if rest.starts_with("<!--") || rest.starts_with("<?") {
            let close = if rest.starts_with("<?") { "?>" } else { "-->" };
            rest = &rest[rest.find(close).unwrap() + close.len()..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let element = stack.pop().unwrap();
            assert_eq!(&r[..r.find('>').unwrap()], element.name);
            stack.last_mut().unwrap().children.push(Node::Element(element));
            rest = &r[r.find('>').unwrap() + 1..];
        } else {
            let end = rest.find('>').unwrap();
            let tag = &rest[1..end];
            let (tag, closed) = match tag.strip_suffix('/') {
                Some(t) => (t, true),
                None => (tag, false),
            };
            let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
            let mut attributes = vec![];
            let mut attrs = &tag[name_end..];
            while let Some(eq) = attrs.find('=') {
                let name = attrs[..eq].trim().to_owned();
                let quote = attrs[eq + 1..].chars().next().unwrap();
                let value_end = attrs[eq + 2..].find(quote).unwrap() + eq + 2;
                attributes.push((name, xml_decode(&attrs[eq + 2..value_end])));
                attrs = &attrs[value_end + 1..];
            }
            let element = Element { name: tag[..name_end].to_owned(), attributes, children: vec![] };
            if closed {
                stack.last_mut().unwrap().children.push(Node::Element(element));
            } else {
                stack.push(element);
            }
            rest = &rest[end + 1..];
        }
    }
    stack
        .pop()
        .unwrap()
        .children
        .into_iter()
        .find_map(|n| if let Node::Element(e) = n { Some(e) } else { None })
        .unwrap()
}

const DASH_LEVELS: [&str; 4] = ["MPD", "Period", "AdaptationSet", "Representation"];

/// The bases in force inside `element` (a level), given those of its parent.
fn level_bases(element: &Element, parent: &[Url], fetches: &mut Vec<Fetch>) -> Vec<Url> {
    let own: Vec<&Element> = element.elements().filter(|e| e.local() == "BaseURL").collect();
    if own.is_empty() {
        return parent.to_vec();
    }
    let mut bases = vec![];
    for base_url in own {
        let value = base_url.text();
        let urls: Vec<Url> = parent.iter().map(|p| p.join(value.trim()).unwrap()).collect();
        bases.extend(urls.iter().cloned());
        // A BaseURL is itself fetched when it names the media file (SegmentBase).
        fetches.push(Fetch { value, urls });
    }
    bases
}

/// Every base a URL held by `element` (a level) may be resolved against: its own and
/// those of every level below it, which inherit segment information.
fn subtree_bases(element: &Element, bases: &[Url]) -> Vec<Url> {
    let mut all = bases.to_vec();
    for child in element.elements().filter(|e| DASH_LEVELS.contains(&e.local())) {
        let child_bases = level_bases(child, bases, &mut vec![]);
        all.extend(subtree_bases(child, &child_bases));
    }
    all
}

const DASH_SEGMENT_ATTRIBUTES: [(&str, &[&str]); 5] = [
    ("SegmentTemplate", &["media", "initialization", "index", "bitstreamSwitching"]),
    ("SegmentURL", &["media", "index"]),
    ("Initialization", &["sourceURL"]),
    ("RepresentationIndex", &["sourceURL"]),
    ("BitstreamSwitching", &["sourceURL"]),
];

/// Walks the elements under a level, with that level's bases and the bases of its subtree.
fn dash_walk(element: &Element, bases: &[Url], subtree: &[Url], page: &Url, fetches: &mut Vec<Fetch>) {
    let resolve = |value: &str, against: &[Url]| against.iter().map(|b| b.join(value).unwrap()).collect::<Vec<_>>();
    for child in element.elements() {
        for (attribute, value) in &child.attributes {
            let segment = DASH_SEGMENT_ATTRIBUTES
                .iter()
                .any(|(e, names)| *e == child.local() && names.contains(&attribute.as_str()));
            if segment || attribute == "keyUriTemplate" {
                fetches.push(Fetch { value: value.clone(), urls: resolve(value, subtree) });
            } else if attribute == "xlink:href" || attribute == "licenseUrl" || attribute == "proxyServerURL" {
                if let Ok(url) = page.join(value) {
                    if url.scheme().starts_with("http") {
                        fetches.push(Fetch { value: value.clone(), urls: vec![url] });
                    }
                }
            }
        }
        match child.local() {
            level if DASH_LEVELS.contains(&level) => {
                let child_bases = level_bases(child, bases, fetches);
                let child_subtree = subtree_bases(child, &child_bases);
                dash_walk(child, &child_bases, &child_subtree, page, fetches);
            }
            "Location" | "PatchLocation" => {
                let value = child.text();
                fetches.push(Fetch { urls: resolve(value.trim(), bases), value });
            }
            // License and steering servers are requested as written: relative to the page.
            "Laurl" | "laurl" | "ContentSteering" => {
                let value = child.text();
                fetches.push(Fetch { urls: vec![page.join(value.trim()).unwrap()], value });
            }
            "BaseURL" => {}
            // HTTP time sources: URLs separated by spaces, requested as written.
            "UTCTiming" => {
                let attribute = |n: &str| child.attributes.iter().find(|(a, _)| a == n).map(|(_, v)| v.clone());
                let scheme = attribute("schemeIdUri").unwrap_or_default();
                let kinds = ["http-xsdate", "http-iso", "http-ntp", "http-head"];
                if kinds.iter().any(|s| ["2012", "2014"].iter().any(|y| scheme == format!("urn:mpeg:dash:utc:{s}:{y}")))
                {
                    for value in attribute("value").unwrap_or_default().split_whitespace() {
                        fetches.push(Fetch { urls: vec![page.join(value).unwrap()], value: value.to_owned() });
                    }
                }
            }
            _ => dash_walk(child, bases, subtree, page, fetches),
        }
    }
}

fn dash_fetches(mpd: &str, manifest: &Url) -> Vec<Fetch> {
    let root = parse_xml(mpd);
    let page = Url::parse("https://player.example/app/index.html").unwrap();
    let mut fetches = vec![];
    let bases = level_bases(&root, std::slice::from_ref(manifest), &mut fetches);
    let subtree = subtree_bases(&root, &bases);
    dash_walk(&root, &bases, &subtree, &page, &mut fetches);
    fetches
}

#[test]
fn dash_fixtures_give_every_gate_uri_one_credential_and_no_other_uri_any() {
    for name in ["multiperiod.mpd", "segment_list.mpd", "on_demand.mpd", "drm.mpd", "live_location.mpd"] {
        let input = fixture(name);
        let manifest = Url::parse(&format!("https://gate.example.com/vod/{name}")).unwrap();
        for output in [
            dash::rewrite(&input, &propagation()),
            dash::rewrite_with_refresh(&input, &propagation(), manifest.as_str()),
        ] {
            assert_only_credentials_added(&input, &output);
            parse_xml(&output); // still well-formed
            let fetches = dash_fetches(&output, &manifest);
            assert_fetches(name, &output, &fetches);
            assert!(fetches.iter().any(|f| f.value.contains("token=TKN")), "{name}: nothing rewritten");
        }
    }
}

#[test]
fn dash_fixture_details() {
    let out = dash::rewrite(&fixture("multiperiod.mpd"), &propagation());
    for expected in [
        "<BaseURL>https://gate.example.com/vod/event-42/?token=TKN</BaseURL>",
        r#"initialization="$RepresentationID$/init.mp4?token=TKN" media="$RepresentationID$/$Number%05d$.m4s?token=TKN""#,
        // Inherited by a Representation on another host: no credential for anyone.
        r#"<SegmentTemplate timescale="48000" initialization="audio/$RepresentationID$/init.mp4" media="audio/$RepresentationID$/$Number%05d$.m4s" startNumber="1" duration="192000"/>"#,
        // One of two alternative BaseURLs is on another host.
        r#"initialization="$RepresentationID$_init.mp4" media="$RepresentationID$_$Time$.mp4">"#,
        ">ad/?token=TKN</BaseURL>",
        "<BaseURL>&#x2F;vod/event-42/tail/?token=TKN</BaseURL>",
        "<BaseURL><![CDATA[video/?lang=en&src=tail&token=TKN]]></BaseURL>",
        r#"media="chunk-$RepresentationID$-$Number$.m4s?x=1&amp;y=2&amp;token=TKN""#,
        "<BaseURL>//gate.example.com/vod/event-42/tail/subs/?token=TKN</BaseURL>",
        r#"initialization="subs-init.mp4?token=TKN" media="subs-$Number$.mp4?token=TKN""#,
        r#"xlink:href="https://gate.example.com/vod/event-42/period3.xml?token=TKN""#,
        r#"xlink:href="period4.xml""#,
    ] {
        assert!(out.contains(expected), "missing {expected:?}");
    }
    let out = dash::rewrite(&fixture("drm.mpd"), &propagation());
    for expected in [
        "<dashif:Laurl>https://gate.example.com/drm/playready/AcquireLicense?kid=9eb4050d&amp;token=TKN</dashif:Laurl>",
        r#"<ms:laurl licenseUrl="https://gate.example.com/drm/widevine?kid=9eb4050d&amp;v=2&amp;token=TKN"/>"#,
        "<dashif:laurl>https://license.drm-vendor.example/widevine</dashif:laurl>",
        r#"<clearkey:Laurl Lic_type="EME-1.0">/drm/clearkey/license</clearkey:Laurl>"#,
        "\n          https://gate.example.com/drm/clearkey/license?token=TKN\n        </dashif:Laurl>",
        "<mspr:pro>xAEAAAEAAQC6ATwAVwBSAE0ASABFAEEARABFAFIAPgA=</mspr:pro>",
        r#"keyUriTemplate="keys/key-$Number$.bin?token=TKN""#,
    ] {
        assert!(out.contains(expected), "missing {expected:?}");
    }
    let out = dash::rewrite(&fixture("live_location.mpd"), &propagation());
    for expected in [
        "<Location>https://gate.example.com/out/v1/live-1/index.mpd?aws.manifestfilter=video_height:1-720&amp;start=2024-03-01T10%3A00%3A00Z&amp;token=TKN</Location>",
        "<PatchLocation ttl=\"60\">patch.mpp?publishTime=2024-03-01T10:16:40Z&amp;id=live-1&amp;token=TKN</PatchLocation>",
        r#"proxyServerURL="https://gate.example.com/steering-proxy?x=1&amp;y=2&amp;token=TKN">https://steering.partner.example/dash.dcsm?video=live-1</ContentSteering>"#,
        r#"<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-xsdate:2014" value="https://gate.example.com/time/xsdate?token=TKN https://time.partner.example/xsdate"/>"#,
        r#"<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="https://time.akamai.com/?iso&amp;ms"/>"#,
    ] {
        assert!(out.contains(expected), "missing {expected:?}");
    }
    let out = dash::rewrite(&fixture("on_demand.mpd"), &propagation());
    assert!(out.contains("<BaseURL>sintel_1080p_dashinit.mp4?token=TKN</BaseURL>"));
    assert!(out.contains("<BaseURL>https://origin.partner.example/sintel/sintel_720p_dashinit.mp4</BaseURL>"));
    assert!(out.contains(r#"<Initialization sourceURL="audio/sintel_audio_en_init.mp4?token=TKN" range="0-833"/>"#));
}

#[test]
fn dash_utc_timing_urls_on_the_gate_get_the_credential() {
    let p = propagation();
    let mpd = |attributes: &str| format!("<MPD type=\"dynamic\"><Period/><UTCTiming {attributes}/></MPD>");
    let xsdate = "schemeIdUri=\"urn:mpeg:dash:utc:http-xsdate:2014\"";
    for (attributes, expected) in [
        (
            format!("{xsdate} value=\"https://gate.example.com/time\""),
            format!("{xsdate} value=\"https://gate.example.com/time?token=TKN\""),
        ),
        (
            "schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"https://gate.example.com/t?iso&amp;ms\"".into(),
            "schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"https://gate.example.com/t?iso&amp;ms&amp;token=TKN\"".into(),
        ),
        (
            "value='//gate.example.com/t?token=old' schemeIdUri='urn:mpeg:dash:utc:http-head:2014'".into(),
            "value='//gate.example.com/t?token=TKN' schemeIdUri='urn:mpeg:dash:utc:http-head:2014'".into(),
        ),
        (
            "schemeIdUri=\"urn:mpeg:dash:utc:http-ntp:2014\" value=\"https://GATE.example.com/ntp\"".into(),
            "schemeIdUri=\"urn:mpeg:dash:utc:http-ntp:2014\" value=\"https://GATE.example.com/ntp?token=TKN\"".into(),
        ),
        // The first edition's URNs (2012), which dash.js still reads.
        (
            "schemeIdUri=\"urn:mpeg:dash:utc:http-xsdate:2012\" value=\"https://gate.example.com/t\"".into(),
            "schemeIdUri=\"urn:mpeg:dash:utc:http-xsdate:2012\" value=\"https://gate.example.com/t?token=TKN\"".into(),
        ),
        (
            "schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2012\" value=\"https://gate.example.com/t\"".into(),
            "schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2012\" value=\"https://gate.example.com/t?token=TKN\"".into(),
        ),
        // Several URLs: each on the gate gets it, the others not.
        (
            format!("{xsdate} value=\"https://gate.example.com/a https://time.akamai.com/?iso\n\t/rel https://gate.example.com/b?token=old\""),
            format!("{xsdate} value=\"https://gate.example.com/a?token=TKN https://time.akamai.com/?iso\n\t/rel https://gate.example.com/b?token=TKN\""),
        ),
    ] {
        assert_eq!(dash::rewrite(&mpd(&attributes), &p), mpd(&expected), "{attributes}");
    }
    for attributes in [
        format!("{xsdate} value=\"\""),
        format!("{xsdate} value=\"   \""),
        xsdate.to_owned(),
        format!("{xsdate} value=\"https://time.akamai.com/?iso&amp;ms\""),
        format!("{xsdate} value=\"https://evil.example/?token=old\""),
        format!("{xsdate} value=\"https://gate.example.com.evil.example/t\""),
        format!("{xsdate} value=\"https://user@gate.example.com/t\""),
        // Requested as written, from the player's page: a relative URL is not ours.
        format!("{xsdate} value=\"/time\""),
        // Shaka and ExoPlayer read the whole value as one URL: on another host here.
        format!("{xsdate} value=\"https://evil.example/t https://gate.example.com/t\""),
        format!("{xsdate} value=\"https://gate.example.com https://evil.example/\""),
        // Whitespace some readers split at and others do not.
        format!("{xsdate} value=\"https://gate.example.com/a\u{a0}https://evil.example/x\""),
        format!("{xsdate} value=\"https://gate.example.com/a&#160;https://evil.example/x\""),
        format!("{xsdate} value=\"https://gate.example.com/a&#9;https://evil.example/x\""),
        format!("{xsdate} value=\"https://gate.example.com/a&#32;https://evil.example/x\""),
        format!("{xsdate} value=\"https://gate.example.com/a\u{2028}https://evil.example/x\""),
        format!("{xsdate} value=\"https://gate.example.com/a\u{feff}https://evil.example/x\""),
        // Not fetched over HTTP.
        "schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"https://gate.example.com/t\"".into(),
        "schemeIdUri=\"urn:mpeg:dash:utc:ntp:2014\" value=\"gate.example.com\"".into(),
        "schemeIdUri=\"urn:example:other\" value=\"https://gate.example.com/t\"".into(),
        "schemeId=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"https://gate.example.com/t\"".into(),
    ] {
        let input = mpd(&attributes);
        assert_eq!(dash::rewrite(&input, &p), input);
    }
    // Other URL attributes of the element stay in order.
    let both = format!("<MPD><UTCTiming {xsdate} value=\"https://gate.example.com/t\" xlink:href=\"https://gate.example.com/x\"/></MPD>");
    assert_eq!(dash::rewrite(&both, &p), both.replace("/t\"", "/t?token=TKN\"").replace("/x\"", "/x?token=TKN\""));
    let huge = mpd(&format!("{xsdate} value=\"https://gate.example.com/{}\"", "a/".repeat(2_500_000)));
    assert_eq!(dash::rewrite(&huge, &p).len(), huge.len() + "?token=TKN".len());
}

#[test]
fn dash_documents_players_read_differently_are_left_unchanged() {
    let p = propagation();
    for mpd in [
        // Mismatched end tags: which element a template belongs to is anyone's guess.
        r#"<MPD><Period><AdaptationSet><BaseURL>https://cdn.example/</BaseURL></Period><SegmentTemplate media="a.m4s"/></AdaptationSet></MPD>"#,
        // A DTD may define entities that expand into elements.
        r#"<!DOCTYPE MPD [<!ENTITY b "<BaseURL>https://evil.example/</BaseURL>">]><MPD><Period>&b;<SegmentTemplate media="a.m4s"/></Period></MPD>"#,
        // Two roots.
        r#"<MPD/><MPD><SegmentTemplate media="a.m4s"/></MPD>"#,
    ] {
        assert_eq!(dash::rewrite(mpd, &p), mpd);
    }
    // A BaseURL players could read two ways counts as foreign.
    let comment = r#"<MPD><BaseURL>https://gate.example.com<!-- -->.evil.example/</BaseURL><Period><SegmentTemplate media="a.m4s"/></Period></MPD>"#;
    assert_eq!(dash::rewrite(comment, &p), comment);
    let entity =
        r#"<MPD><BaseURL>&#47;&#47;evil.example/</BaseURL><Period><SegmentTemplate media="a.m4s"/></Period></MPD>"#;
    assert_eq!(dash::rewrite(entity, &p), entity);
    let deep = format!("<MPD>{}<SegmentTemplate media=\"a.m4s\"/></MPD>", "<a>".repeat(300));
    assert_eq!(dash::rewrite(&deep, &p), deep);
}

#[test]
#[allow(clippy::disallowed_methods)] // the test, not the core, reads the clock to bound its run time
fn hostile_sizes_are_linear_and_exact() {
    let p = propagation();
    let started = std::time::Instant::now();
    // A 5 MB URI line, a 5 MB attribute, and 100 000 segments.
    let long = format!("#EXTM3U\n#EXT-X-MAP:URI=\"{}\"\n{}\n", "a/".repeat(2_500_000), "b".repeat(5_000_000));
    let out = hls::rewrite(&long, &p);
    assert_eq!(out.len(), long.len() + 2 * "?token=TKN".len());
    assert!(out.ends_with("b?token=TKN\n"));
    let many: String = (0..100_000).map(|i| format!("#EXTINF:4,\nseg{i}.ts\n")).collect();
    let out = hls::rewrite(&many, &p);
    assert_eq!(out.matches("?token=TKN\n").count(), 100_000);
    let stale = format!("a.ts?{}", "token=x&".repeat(500_000));
    assert_eq!(hls::rewrite(&stale, &p), "a.ts?token=TKN");
    let refs = format!("#EXT-X-DEFINE:NAME=\"v\",VALUE=\"x\"\nseg{}.ts\n", "{$v}".repeat(1_000_000));
    assert!(hls::rewrite(&refs, &p).ends_with(".ts?token=TKN\n"));

    let segments: String = (0..100_000).map(|i| format!("<SegmentURL media=\"s{i}.m4s\"/>")).collect();
    let mpd = format!("<MPD><Period><AdaptationSet><Representation><SegmentList>{segments}</SegmentList></Representation></AdaptationSet></Period></MPD>");
    assert_eq!(dash::rewrite(&mpd, &p).matches(".m4s?token=TKN\"").count(), 100_000);
    // Unclosed quotes and tags, 5 MB each: unchanged or only added to, never stuck.
    for junk in [
        format!("<MPD><Period><SegmentTemplate media=\"{}", "x".repeat(5_000_000)),
        format!("<MPD>{}", "<Period ".repeat(700_000)),
        format!("<MPD><BaseURL>{}", "<![CDATA[".repeat(500_000)),
        "&#".repeat(2_500_000),
    ] {
        assert_only_credentials_added(&junk, &dash::rewrite(&junk, &p));
        assert_only_credentials_added(&junk, &hls::rewrite(&junk, &p));
    }
    assert!(started.elapsed().as_secs() < 20, "took {:?}", started.elapsed());
}
