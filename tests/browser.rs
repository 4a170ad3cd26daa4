//! The settings pages in a real browser: Debian's `chromium`, headless, driven through
//! `chromedriver` with fantoccini. A pipeline of two URLs is made through the form, pushed with
//! "push now", called back from History step by step until its run ends `success`, and
//! deleted, once with JavaScript and once without; stored strings full of markup stay text.
//! Every assertion reads the DOM.
//!
//! Without `chromium` or `chromedriver` on the PATH the tests say why and pass, unless
//! `CI=true`, where they fail (`.ci/run` installs both). With `UPDATE_SCREENSHOTS=1` the
//! JavaScript run writes `docs/settings.png` and `docs/history.png` (the README shows them);
//! otherwise it writes them under `target/screenshots/`, so a test run leaves the working tree
//! as it was.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::util::{answering, missing_program, receiver, TestHub, WAIT};

/// One browser at a time: each test starts its own, and two at once on a small machine only
/// make both slow.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `name` on the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// chromium and chromedriver, or `None` after saying why the test does not run (a failure
/// under `CI=true`).
fn tools() -> Option<(PathBuf, PathBuf)> {
    match (on_path("chromium"), on_path("chromedriver")) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            missing_program(
                "chromium and chromedriver are not both on the PATH \
                 (apt-get install chromium chromium-driver)",
            );
            None
        }
    }
}

/// A headless chromium session behind its own chromedriver, with a fresh profile. Dropping it
/// ends chromedriver and the browser it started (they share a process group).
struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(javascript: bool) -> Option<Browser> {
        let (chromium, chromedriver) = tools()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for chromedriver")
            .port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts")
        };
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut browser = Browser {
            client: None,
            driver,
            _profile: profile,
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect(address).is_err() {
            assert!(started.elapsed() < WAIT, "chromedriver never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1200,1000".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let capabilities = json!({
            "browserName": "chrome",
            // An alert stays open, so a test can see that none ever opened.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{address}"))
            .await
            .expect("a chromium session");
        browser.client = Some(client);
        Some(browser)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("connected")
    }

    /// Ends the session (chromedriver closes the browser).
    async fn quit(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The process group chromedriver leads: chromedriver and every browser process.
        let group = rustix::process::Pid::from_child(&self.driver);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.driver.wait();
    }
}

/// The page's element for `css`.
async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element,
        Err(err) => panic!("no {css} on {}: {err}", url(client).await),
    }
}

async fn url(client: &Client) -> String {
    client
        .current_url()
        .await
        .map_or_else(|e| e.to_string(), |u| u.to_string())
}

/// The text of `css`.
async fn text(client: &Client, css: &str) -> String {
    find(client, css).await.text().await.expect("text")
}

/// Waits for `css` to be on the page. With JavaScript the page changes by itself (History's
/// long-poll); without, a person reloads, and so does this.
async fn until(client: &Client, javascript: bool, css: &str) -> fantoccini::elements::Element {
    let started = Instant::now();
    loop {
        match client.find(Locator::Css(css)).await {
            Ok(element) => return element,
            Err(err) if err.is_no_such_element() && started.elapsed() < WAIT => {}
            Err(err) => panic!("{css} never appeared on {}: {err}", url(client).await),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !javascript {
            client.refresh().await.expect("reload");
        }
    }
}

/// Types `text` into the field `css`, after what it holds.
async fn type_into(client: &Client, css: &str, text: &str) {
    find(client, css)
        .await
        .send_keys(text)
        .await
        .expect("typing");
}

/// Clicks `css` and waits for the page it leads to.
async fn click(client: &Client, css: &str) {
    find(client, css).await.click().await.expect("click");
}

/// Whether the page has opened an alert, confirm or prompt.
async fn an_alert_is_open(client: &Client) -> bool {
    match client.get_alert_text().await {
        Ok(_) => true,
        Err(err) if err.is_no_such_alert() => false,
        Err(err) => panic!("could not ask for an alert: {err}"),
    }
}

/// A screenshot of the page from its top, `height` pixels tall.
async fn screenshot(client: &Client, name: &str, height: u32) {
    client.set_window_size(1200, height).await.expect("resize");
    client
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .unwrap();
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let folder = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        root.join("docs")
    } else {
        root.join("target").join("screenshots")
    };
    std::fs::create_dir_all(&folder).expect("a screenshot folder");
    std::fs::write(folder.join(name), png).expect("the screenshot written");
}

/// The whole story through the pages: a two-URL pipeline made through the form, "push now",
/// each step called back from History until the run ends `success`, then deleted.
async fn a_pipeline_through_its_pages(javascript: bool) {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start(javascript).await else {
        return;
    };
    let b = browser.client();
    let t = TestHub::start().await;
    let first = answering(200).await;
    let second = answering(200).await;
    let (url1, url2) = (
        format!("{}/ci", first.uri()),
        format!("{}/deploy", second.uri()),
    );

    // The home page: a repository made through its form leads to its webhooks.
    b.goto(&t.hub.uri()).await.expect("home");
    assert_eq!(
        text(b, "h1").await,
        concat!("hubmock ", env!("CARGO_PKG_VERSION"))
    );
    type_into(b, "#namespace", "acme").await;
    type_into(b, "#name", "app").await;
    click(b, "section[aria-labelledby=create] button[type=submit]").await;
    until(b, false, "#pipelines").await;
    assert_eq!(text(b, "h1").await, "Webhooks of acme/app");
    let live_note = "Reload the page to see what changed since it was served.";

    // A name and one URL, then "Add webhook" for the second.
    type_into(b, "#name", "CI then deploy").await;
    type_into(b, "#hook_url-0", &url1).await;
    if javascript {
        b.execute("window.samePage = true", vec![]).await.unwrap();
    }
    click(b, "button[data-add-url]").await;
    let second_field = until(b, false, "#hook_url-1").await;
    let label = text(b, "label[for=hook_url-1]").await;
    assert_eq!(label, "Webhook URL 2");
    if javascript {
        let same = b.execute("return window.samePage === true", vec![]).await;
        assert_eq!(same.unwrap(), json!(true), "the page was reloaded");
    }
    // With or without the round trip, what was typed is still there.
    let name = find(b, "#name").await.prop("value").await.unwrap();
    assert_eq!(name.as_deref(), Some("CI then deploy"));
    let typed = find(b, "#hook_url-0").await.prop("value").await.unwrap();
    assert_eq!(typed.as_deref(), Some(url1.as_str()));
    second_field.send_keys(&url2).await.unwrap();
    click(b, "button[value=create]").await;
    let card = until(b, false, "#pipeline-ci-then-deploy").await;
    let chain: Vec<String> = {
        let mut urls = Vec::new();
        for item in card.find_all(Locator::Css("ol.chain code")).await.unwrap() {
            urls.push(item.text().await.unwrap());
        }
        urls
    };
    assert_eq!(chain, [url1.clone(), url2.clone()]);
    let pipeline = t
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/ci-then-deploy/")
        .await
        .expect(200);
    assert_eq!(pipeline["expect_final_callback"], true);

    // "Push now".
    type_into(b, "#tag", "v1.0.0").await;
    type_into(b, "#pusher", "alice").await;
    click(b, "section[aria-labelledby=push] button[type=submit]").await;
    until(b, false, "#pipeline-ci-then-deploy dd .status").await;
    // The push's tag, in the Tags section beside the webhooks.
    let tag = text(b, "tr[id='tag-v1.0.0']").await;
    assert!(
        tag.contains("linux/amd64") && tag.ends_with("alice"),
        "{tag}"
    );
    if javascript {
        screenshot(b, "settings.png", 1000).await;
    }

    // History: the run, its first step awaiting its callback.
    click(b, "#pipeline-ci-then-deploy a[href$='/history/']").await;
    let article = until(b, false, "article.run").await;
    let run = article.attr("id").await.unwrap().expect("a run id");
    let live = text(b, "#live-note").await;
    if javascript {
        assert_ne!(live, live_note, "the script did not run");
    } else {
        assert_eq!(live, live_note, "a script ran with JavaScript off");
    }
    let push = text(b, &format!("#{run} dl.facts dd")).await;
    assert_eq!(push, "tag v1.0.0 by alice");
    until(
        b,
        javascript,
        &format!("#{run}-step-0-title .status.awaiting_callback"),
    )
    .await;
    // The delivery's answer arrives (live, or on a reload).
    let answered = format!("#{run}-step-0-payload");
    until(b, javascript, &answered).await;
    assert!(text(b, &format!("#{run} section.step"))
        .await
        .contains("HTTP 200"));
    assert!(text(b, &format!("#{run}-step-1-title"))
        .await
        .ends_with("waiting"));

    // The receiver's part, played from the page: step 1 succeeds...
    let id = run.trim_start_matches("run-");
    let form = format!("#cb-{id}-0");
    click(b, &format!("{form}-details summary")).await;
    find(b, &format!("{form}-state"))
        .await
        .select_by_value("success")
        .await
        .unwrap();
    type_into(b, &format!("{form}-description"), "tests passed").await;
    type_into(b, &format!("{form}-context"), "ci").await;
    type_into(
        b,
        &format!("{form}-target_url"),
        "http://ci.example/builds/1",
    )
    .await;
    click(b, &format!("{form}-details button[type=submit]")).await;
    // ...and the chain moves on to the second URL.
    until(
        b,
        javascript,
        &format!("#{run}-step-0-title .status.success"),
    )
    .await;
    until(b, javascript, &format!("#{run}-step-1-payload")).await;
    let step = text(b, &format!("#{run}-step-1-title")).await;
    assert!(step.ends_with("awaiting callback"), "{step}");
    let link = find(b, &format!("#{run} a[href='http://ci.example/builds/1']")).await;
    assert_eq!(link.text().await.unwrap(), "http://ci.example/builds/1");
    let form = format!("#cb-{id}-1");
    click(b, &format!("{form}-details summary")).await;
    type_into(b, &format!("{form}-description"), "deployed").await;
    click(b, &format!("{form}-details button[type=submit]")).await;
    until(b, javascript, &format!("#{run}-title .status.success")).await;
    assert_eq!(second.received_requests().await.unwrap().len(), 1);
    if javascript {
        click(b, &format!("#{run}-step-0-payload summary")).await;
        screenshot(b, "history.png", 1500).await;
        // A run started elsewhere appears while the page is open, without a reload.
        b.execute("window.samePage = true", vec![]).await.unwrap();
        let next = t.push("acme/app", "v1.0.1").await.remove(0);
        until(b, true, &format!("#run-{}", next["id"])).await;
        let same = b.execute("return window.samePage === true", vec![]).await;
        assert_eq!(same.unwrap(), json!(true), "the page was reloaded");
    }

    // Delete, after the confirmation.
    click(b, "nav.crumbs a").await;
    click(b, "#pipeline-ci-then-deploy a.danger").await;
    assert_eq!(text(b, "h1").await, "Delete CI then deploy?");
    click(b, "button.danger").await;
    until(b, false, "#pipelines").await;
    assert!(b
        .find(Locator::Css("#pipeline-ci-then-deploy"))
        .await
        .is_err());
    let pipelines = t
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/")
        .await
        .expect(200);
    assert_eq!(pipelines["count"], 0);
    assert!(!an_alert_is_open(b).await);
    browser.quit().await;
}

#[tokio::test]
async fn a_pipeline_is_made_pushed_called_back_and_deleted_in_the_browser_with_javascript() {
    a_pipeline_through_its_pages(true).await;
}

#[tokio::test]
async fn a_pipeline_is_made_pushed_called_back_and_deleted_in_the_browser_without_javascript() {
    a_pipeline_through_its_pages(false).await;
}

#[tokio::test]
async fn markup_in_every_stored_string_stays_text_in_the_browser() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start(true).await else {
        return;
    };
    let b = browser.client();
    let t = TestHub::start().await;
    let xss = r#"<script>alert(1)</script>"'</textarea><img src=x onerror=alert(2)>"#;
    t.http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "description": xss}),
        )
        .await
        .expect(201);
    let receiver = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(xss))
        .mount(&receiver)
        .await;
    let hook = format!("{}/hook?q='onmouseover='alert(3)", receiver.uri());
    let name = format!("p {xss}");
    t.pipeline("acme/app", &name, &[hook.clone(), hook], true)
        .await;
    let runs = t
        .http
        .post(
            "/_hubmock/repositories/acme/app/push",
            json!({"tag": "v1", "pusher": xss}),
        )
        .await
        .expect(202);
    let run = runs["runs"][0].clone();
    t.delivered(&run, 0).await;
    let settings = format!("{}/r/acme/app/~/settings/webhooks/", t.hub.uri());
    let slug = hubmock::model::pipeline::slugify(&name);
    let history = format!("{settings}{slug}/history/");

    // The callback's strings typed into the page's own form.
    b.goto(&history).await.unwrap();
    let id = run["id"].to_string();
    let form = format!("#cb-{id}-0");
    click(b, &format!("{form}-details summary")).await;
    type_into(b, &format!("{form}-description"), xss).await;
    type_into(b, &format!("{form}-context"), &xss[..60]).await;
    click(b, &format!("{form}-details button[type=submit]")).await;
    until(b, true, &format!("#run-{id}-step-1-payload")).await;

    for page in [t.hub.uri(), settings.clone(), history.clone()] {
        b.goto(&page).await.unwrap();
        for summary in b.find_all(Locator::Css("summary")).await.unwrap() {
            summary.click().await.unwrap();
        }
        assert!(!an_alert_is_open(b).await, "an alert opened on {page}");
        let scripts = b.find_all(Locator::Css("script")).await.unwrap();
        assert_eq!(scripts.len(), 1, "a script was injected on {page}");
        let images = b.find_all(Locator::Css("img, textarea")).await.unwrap();
        assert!(images.is_empty(), "an element was injected on {page}");
        let handlers = b
            .execute(
                "return [...document.querySelectorAll('*')].filter(e => \
                 [...e.attributes].some(a => a.name.startsWith('on'))).length",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            handlers,
            json!(0),
            "an event handler was injected on {page}"
        );
    }
    // Every string reads as it was stored.
    let h1 = text(b, "h1").await;
    assert_eq!(h1, format!("History of {name}"));
    let body = text(b, "body").await;
    for stored in [xss, &xss[..60]] {
        assert!(body.contains(stored), "{stored} not shown as text");
    }
    assert!(text(b, &format!("#run-{id}-step-0-response pre")).await == xss);
    browser.quit().await;
}
