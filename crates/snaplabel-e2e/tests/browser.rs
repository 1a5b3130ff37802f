//! The browser app in real headless Chromium against a real `snaplabel dev` stack: what a person
//! does, checked from what the page shows.

use snaplabel_e2e::{Session, photo};
use std::time::Duration;

const LABELING: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cat_photo_shows_cat_with_a_box_and_survives_a_reload() {
    let session = Session::open(|_| {}).await;
    let browser = &session.browser;
    browser.choose_files(&[photo("chelsea.png")]).await;

    let card = browser.wait(".cards .card.done", LABELING).await;
    let labels = browser.texts(".card.done .label-name").await;
    assert!(labels.iter().any(|l| l == "Cat"), "{labels:?}");
    let boxes = browser.all(".card.done svg.boxes .box rect").await;
    assert!(!boxes.is_empty(), "no box drawn over the cat");
    let captions = browser.texts(".card.done svg.boxes text").await;
    // Coinciding boxes share one caption, likeliest label first ("Cat · Tiger Cat").
    assert!(
        captions.iter().any(|c| c.split(" · ").any(|n| n == "Cat")),
        "{captions:?}"
    );
    assert!(card.text().await.unwrap().contains("chelsea.png"));
    assert!(
        !browser.all(".card.done .swatches .swatch").await.is_empty(),
        "dominant colours shown"
    );
    let announced = browser.texts("[role=status][aria-live=polite]").await;
    assert!(
        announced
            .iter()
            .any(|a| a.starts_with("chelsea.png: labeled")),
        "the live region announces the result: {announced:?}"
    );
    browser.screenshot("cat-labeled").await;

    // Focusing the Cat label highlights its box (keyboard users get the same as hovering).
    browser.focus_label("Cat", LABELING).await;
    let active = browser
        .wait(".card.done svg.boxes .box.active text", LABELING)
        .await;
    assert!(
        active
            .text()
            .await
            .unwrap()
            .split(" · ")
            .any(|n| n == "Cat")
    );
    browser.screenshot("cat-highlighted").await;

    // The raw JSON is one click away and is the result document itself.
    let toggle = browser
        .wait(".card.done .json-tools button", LABELING)
        .await;
    toggle.click().await.unwrap();
    let json = browser.wait(".card.done pre.json", LABELING).await;
    let doc: serde_json::Value = serde_json::from_str(&json.text().await.unwrap()).unwrap();
    assert_eq!(doc["status"], "ok");
    assert!(
        doc["source"]["key"]
            .as_str()
            .unwrap()
            .starts_with("uploads/")
    );

    // Reload: the same guest identity (kept in localStorage) sees its history.
    browser.client.refresh().await.unwrap();
    browser.wait(".history .card.done", LABELING).await;
    let history = browser.texts(".history .card.done .label-name").await;
    assert!(history.iter().any(|l| l == "Cat"), "{history:?}");
    let names = browser.texts(".history .card .file-name").await;
    assert_eq!(names, ["chelsea.png"]);
    browser.screenshot("history-after-reload").await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_file_named_jpg_ends_in_a_clear_error() {
    let session = Session::open(|_| {}).await;
    let browser = &session.browser;
    let scratch = tempfile::tempdir().unwrap();
    let fake = scratch.path().join("holiday.jpg");
    std::fs::write(&fake, "Dear diary, today I went to the beach.\n").unwrap();
    browser.choose_files(&[fake]).await;

    // The browser calls it image/jpeg, so it is uploaded; the labeler looks at the bytes.
    let error = browser.wait(".card.failed .error", LABELING).await;
    assert_eq!(
        error.attr("data-code").await.unwrap().as_deref(),
        Some("unsupported_format")
    );
    let message = error.text().await.unwrap();
    assert!(message.starts_with("Failed: "), "{message}");
    assert!(message.len() > "Failed: ".len() + 10, "{message}");
    browser.screenshot("text-file-failed").await;

    // Phone width: everything reflows into one column, nothing scrolls sideways.
    browser.client.set_window_size(390, 844).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow: bool = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(!overflow, "the page scrolls sideways at phone width");
    browser.screenshot("phone-width").await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_photos_at_once_each_get_their_labels() {
    let session = Session::open(|_| {}).await;
    let browser = &session.browser;
    browser
        .choose_files(&[
            photo("coffee.png"),
            photo("motorcycle_left.png"),
            photo("astronaut.png"),
            photo("rocket.jpg"),
        ])
        .await;
    browser.wait_count(".cards .card", 4, LABELING).await;
    browser.screenshot("four-photos-in-flight").await;
    browser.wait_count(".cards .card.done", 4, LABELING).await;
    let per_card: serde_json::Value = browser
        .client
        .execute(
            "return Object.fromEntries([...document.querySelectorAll('.cards .card')].map(c => [
                 c.querySelector('.file-name').textContent,
                 [...c.querySelectorAll('.label-name')].map(l => l.textContent)]));",
            vec![],
        )
        .await
        .unwrap();
    let has = |file: &str, label: &str| {
        per_card[file]
            .as_array()
            .is_some_and(|ls| ls.iter().any(|l| l == label))
    };
    assert!(
        has("coffee.png", "Cup") || has("coffee.png", "Coffee"),
        "{per_card}"
    );
    assert!(has("motorcycle_left.png", "Motorcycle"), "{per_card}");
    assert!(
        has("astronaut.png", "Person") && has("astronaut.png", "Face"),
        "{per_card}"
    );
    // The portrait's face has a box.
    let face_boxes: i64 = browser
        .client
        .execute(
            "const card = [...document.querySelectorAll('.cards .card')]
                 .find(c => c.querySelector('.file-name').textContent === 'astronaut.png');
             return [...card.querySelectorAll('svg.boxes text')].filter(t => t.textContent.split(' · ').includes('Face')).length;",
            vec![],
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(face_boxes >= 1, "the astronaut's face is boxed");
    browser.screenshot("four-photos").await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_objects_are_boxed_one_by_one_where_they_are() {
    let session = Session::open(|_| {}).await;
    let browser = &session.browser;
    browser.choose_files(&[photo("home.jpg")]).await;
    assert_birds_boxed_in_the_sky(browser).await;
    browser.screenshot("birds-boxed").await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_photo_stored_sideways_is_shown_upright_with_its_boxes_in_place() {
    // A phone stores a portrait photo turned, with EXIF orientation 6. The page shows it as the
    // phone does, and the boxes land on the birds of the photo as shown, not of the pixels as
    // stored.
    let session = Session::open(|_| {}).await;
    let browser = &session.browser;
    let folder = tempfile::tempdir().unwrap();
    let sideways = folder.path().join("palace-from-a-phone.jpg");
    std::fs::write(
        &sideways,
        snaplabel_fixtures::stored_sideways(&snaplabel_fixtures::photo("home.jpg")),
    )
    .unwrap();
    browser.choose_files(&[sideways]).await;
    assert_birds_boxed_in_the_sky(browser).await;
    let upright = serde_json::json!([512, 384]);
    assert_eq!(shown_size(browser, ".card.done img").await, upright);
    browser.screenshot("sideways-birds-boxed").await;
    // After a reload the card shows the stored object, fetched from S3: upright too.
    browser.client.refresh().await.unwrap();
    browser.wait(".history .card.done", LABELING).await;
    assert_eq!(
        shown_size(browser, ".history .card.done img").await,
        upright
    );
    session.close().await;
}

/// The size an image is shown at, in its own pixels, once it has loaded (`null` if it fails).
async fn shown_size(browser: &snaplabel_e2e::Browser, css: &str) -> serde_json::Value {
    browser
        .client
        .execute_async(
            "const [css, done] = arguments;
             const img = document.querySelector(css);
             const answer = () => done([img.naturalWidth, img.naturalHeight]);
             if (img.complete && img.naturalWidth) answer();
             else {
                 img.addEventListener('load', answer);
                 img.addEventListener('error', () => done(null));
             }",
            vec![css.into()],
        )
        .await
        .unwrap()
}

/// Waits for home.jpg's labels (however it was stored), opens the full label list and
/// highlights "Bird": one box per bird lights up, each where a bird is in the photo as shown:
/// small, in the sky above the roofline, inside the 512×384 frame the boxes are drawn over.
async fn assert_birds_boxed_in_the_sky(browser: &snaplabel_e2e::Browser) {
    browser.wait(".cards .card.done", LABELING).await;
    // Every row, also those scrolled out of view (whose rendered text is empty).
    let labels = browser
        .client
        .execute(
            "return [...document.querySelectorAll('.card.done .label-name')].map(l => l.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        labels.as_array().unwrap().iter().any(|l| l == "Bird"),
        "{labels}"
    );
    // Bird comes after the six strongest labels: "N more labels" shows it.
    browser.wait(".card.done button.fold", LABELING).await;
    // Clicked from the page, as a keyboard's Enter would: a WebDriver click leaves the pointer
    // over the list, which the expanding list then moves under it.
    browser
        .client
        .execute(
            "document.querySelector('.card.done button.fold').click();",
            vec![],
        )
        .await
        .unwrap();
    browser.focus_label("Bird", LABELING).await;
    let drawn: serde_json::Value = browser
        .client
        .execute(
            "const svg = document.querySelector('.card.done svg.boxes');
             return {
                 view: svg.getAttribute('viewBox'),
                 boxes: [...svg.querySelectorAll('.box.active rect')].map(r =>
                     ['x', 'y', 'width', 'height'].map(a => parseFloat(r.getAttribute(a)))),
             };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(drawn["view"], "0 0 512 384", "{drawn}");
    let boxes: Vec<Vec<f64>> = serde_json::from_value(drawn["boxes"].clone()).unwrap();
    assert!((7..=9).contains(&boxes.len()), "{drawn}");
    for b in &boxes {
        let [x, y, w, h] = b[..] else { unreachable!() };
        assert!(
            x >= 0.0 && x + w <= 512.0 && y >= 0.0 && y + h < 0.65 * 384.0 && w < 50.0 && h < 40.0,
            "{drawn}"
        );
    }
    browser
        .client
        .execute(
            "document.querySelector('.card.done svg.boxes').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_over_the_limit_are_refused_before_any_request() {
    let session = Session::open(|c| c.max_upload_bytes = 50_000).await;
    let browser = &session.browser;
    browser.choose_files(&[photo("chelsea.png")]).await;
    let error = browser.wait(".card.failed .error", LABELING).await;
    assert_eq!(
        error.attr("data-code").await.unwrap().as_deref(),
        Some("too_large")
    );
    assert!(error.text().await.unwrap().contains("the limit is 50 kB"));
    // Nothing reached storage: the history is empty after a reload.
    browser.client.refresh().await.unwrap();
    browser.wait(".drop button:not([disabled])", LABELING).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(browser.all(".history .card").await.is_empty());
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_can_be_dropped_and_pasted_too() {
    let session = Session::open(|_| {}).await;
    let browser = &session.browser;
    browser.wait(".drop button:not([disabled])", LABELING).await;
    // A real PNG made in the page (a sunset-ish gradient), handed over the two other ways in:
    // a drop on the drop zone and a paste anywhere.
    browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const canvas = document.createElement('canvas');
             canvas.width = 320; canvas.height = 240;
             const g = canvas.getContext('2d');
             const sky = g.createLinearGradient(0, 0, 0, 240);
             sky.addColorStop(0, '#1e3a8a'); sky.addColorStop(1, '#f97316');
             g.fillStyle = sky; g.fillRect(0, 0, 320, 240);
             canvas.toBlob(blob => {
               const give = (name) => {
                 const t = new DataTransfer();
                 t.items.add(new File([blob], name, { type: 'image/png' }));
                 return t;
               };
               document.querySelector('.drop').dispatchEvent(
                 new DragEvent('drop', { dataTransfer: give('dropped.png'), bubbles: true, cancelable: true }));
               window.dispatchEvent(
                 new ClipboardEvent('paste', { clipboardData: give('pasted.png'), bubbles: true, cancelable: true }));
               done(true);
             }, 'image/png');",
            vec![],
        )
        .await
        .unwrap();
    browser.wait_count(".cards .card.done", 2, LABELING).await;
    let mut names = browser.texts(".cards .card.done .file-name").await;
    names.sort();
    assert_eq!(names, ["dropped.png", "pasted.png"]);
    session.close().await;
}

/// The names on the cards under `css`, in page order.
async fn card_names(browser: &snaplabel_e2e::Browser, css: &str) -> Vec<String> {
    let mut names = browser.texts(&format!("{css} .card .file-name")).await;
    names.sort();
    names
}

/// Types `text` into the gallery's search field and submits it; waits for the answer's sentence.
async fn search(browser: &snaplabel_e2e::Browser, text: &str) -> String {
    let field = browser.wait("#gallery-search", LABELING).await;
    field.clear().await.unwrap();
    field.send_keys(&format!("{text}\u{E007}")).await.unwrap();
    wait_status(browser, text).await
}

/// Waits until the search sentence speaks of `text` (a new answer arrived) and returns it.
async fn wait_status(browser: &snaplabel_e2e::Browser, text: &str) -> String {
    let deadline = std::time::Instant::now() + LABELING;
    loop {
        let status = browser.texts(".search-status").await.join(" ");
        if status.to_lowercase().contains(&text.to_lowercase()) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer for {text:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The id of the element that has the keyboard focus.
async fn focused_id(browser: &snaplabel_e2e::Browser) -> String {
    browser
        .client
        .execute(
            "return document.activeElement && document.activeElement.id;",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_are_found_by_label_deleted_for_good_and_their_labels_exported() {
    let session = Session::open(|_| {}).await;
    let browser = &session.browser;
    browser
        .choose_files(&[
            photo("chelsea.png"),
            photo("coffee.png"),
            photo("home.jpg"),
            photo("rocket.jpg"),
        ])
        .await;
    browser.wait_count(".cards .card.done", 4, LABELING).await;
    // The page asked for its history and its label chips at once when it opened, and uploaded
    // four photos three at a time: all as one guest, the one it keeps in localStorage.
    let identities = std::fs::read_to_string(session.data_dir().join("identities.txt")).unwrap();
    assert_eq!(identities.lines().count(), 1, "{identities}");

    // By a label, and by a parent: "animal" finds the cat and the birds.
    let status = search(browser, "cat").await;
    assert!(status.starts_with("1 photo labeled"), "{status}");
    browser
        .wait_exactly(".results .card.done", 1, LABELING)
        .await;
    assert_eq!(card_names(browser, ".results").await, ["chelsea.png"]);
    let status = search(browser, "animal").await;
    assert!(status.starts_with("2 photos labeled Animal"), "{status}");
    browser
        .wait_exactly(".results .card.done", 2, LABELING)
        .await;
    assert_eq!(
        card_names(browser, ".results").await,
        ["chelsea.png", "home.jpg"]
    );
    browser.screenshot("gallery-search-animal").await;

    // The chips count labels over the whole gallery (the most common first, the rest one
    // press away); one press on a chip shows that label's photos.
    let all = browser
        .wait(".gallery button[aria-expanded='false']", LABELING)
        .await;
    assert!(
        all.text().await.unwrap().starts_with("All "),
        "the chips fold"
    );
    all.click().await.unwrap();
    let food = browser
        .wait(".label-chips button[aria-label='Food, 1 photo']", LABELING)
        .await;
    food.click().await.unwrap();
    wait_status(browser, "labeled Food").await;
    assert_eq!(
        food.attr("aria-pressed").await.unwrap().as_deref(),
        Some("true")
    );
    browser
        .wait_exactly(".results .card.done", 1, LABELING)
        .await;
    assert_eq!(card_names(browser, ".results").await, ["coffee.png"]);
    let field = browser.wait("#gallery-search", LABELING).await;
    field.send_keys("\u{E00C}").await.unwrap(); // Escape: back to everything
    browser.wait_exactly(".results", 0, LABELING).await;

    // Delete, by keyboard: the question takes the focus, Escape keeps the photo, Enter deletes.
    let delete = browser
        .wait("button[aria-label='Delete chelsea.png']", LABELING)
        .await;
    let delete_id = delete.attr("id").await.unwrap().unwrap();
    delete.send_keys("\u{E007}").await.unwrap();
    let confirm = browser.wait(".confirm .button.danger", LABELING).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let confirm_id = focused_id(browser).await;
    assert!(
        confirm_id.starts_with("delete-confirm-"),
        "focus on the question: {confirm_id:?}"
    );
    confirm.send_keys("\u{E00C}").await.unwrap();
    browser.wait_exactly(".confirm", 0, LABELING).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(focused_id(browser).await, delete_id, "focus back on Delete");
    assert_eq!(browser.all(".cards .card").await.len(), 4, "kept");
    let delete = browser
        .wait("button[aria-label='Delete chelsea.png']", LABELING)
        .await;
    delete.send_keys("\u{E007}").await.unwrap();
    let confirm = browser.wait(".confirm .button.danger", LABELING).await;
    confirm.send_keys("\u{E007}").await.unwrap();
    browser.wait_exactly(".cards .card", 3, LABELING).await;
    let announced = browser.texts("[role=status][aria-live=polite]").await;
    assert!(
        announced.iter().any(|a| a == "chelsea.png deleted."),
        "{announced:?}"
    );
    let status = search(browser, "cat").await;
    assert!(status.starts_with("No photos labeled"), "{status}");

    // Gone after a reload too: not in the history, not found, not among the chips.
    browser.client.refresh().await.unwrap();
    browser.wait_count(".history .card.done", 3, LABELING).await;
    assert_eq!(
        card_names(browser, ".history").await,
        ["coffee.png", "home.jpg", "rocket.jpg"]
    );
    let chips = browser.texts(".label-chips button").await;
    assert!(!chips.iter().any(|c| c.starts_with("Cat")), "{chips:?}");
    let status = search(browser, "animal").await;
    assert!(status.starts_with("1 photo labeled"), "{status}");

    // Export: both files download, and read back as what the page shows.
    browser
        .wait(".export button", LABELING)
        .await
        .click()
        .await
        .unwrap();
    let link = browser.wait(".export .download-link", LABELING).await;
    let name = link.text().await.unwrap();
    assert!(
        name.starts_with("snaplabel-labels-") && name.ends_with(".csv"),
        "{name}"
    );
    let csv = browser.downloaded(&name, LABELING).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "file,label,confidence,parents,categories,upload_id"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("coffee.png,Cup,")),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("home.jpg,Bird,") && l.contains(",Animal,")),
        "{csv}"
    );
    assert!(!csv.contains("chelsea.png"), "{csv}");
    let ndjson_button = browser.all(".export button").await.remove(1);
    ndjson_button.click().await.unwrap();
    let ndjson_name = name.replace(".csv", ".ndjson");
    let ndjson = browser.downloaded(&ndjson_name, LABELING).await;
    let docs: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3, "{ndjson}");
    assert!(docs.iter().all(|d| d["status"] == "ok"));
    assert!(docs.iter().any(|d| {
        d["Labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["Name"] == "Rocket")
    }));

    // Adding a photo during a search ends the search, so the new card is seen.
    let status = search(browser, "rocket").await;
    assert!(status.starts_with("1 photo labeled"), "{status}");
    browser.choose_files(&[photo("astronaut.png")]).await;
    browser.wait_exactly(".results", 0, LABELING).await;
    browser
        .wait(".cards .card[aria-label='astronaut.png']", LABELING)
        .await;
    let field = browser.wait("#gallery-search", LABELING).await;
    assert_eq!(field.prop("value").await.unwrap().as_deref(), Some(""));

    // Phone width: nothing wider than the screen, the search field usable.
    browser.client.set_window_size(375, 812).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fits: serde_json::Value = browser
        .client
        .execute(
            "const field = document.getElementById('gallery-search').getBoundingClientRect();
             return [document.documentElement.scrollWidth <= window.innerWidth,
                     field.width >= 150 && field.right <= window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, serde_json::json!([true, true]), "at 375 px wide");
    browser.screenshot("gallery-phone").await;
    session.close().await;
}
