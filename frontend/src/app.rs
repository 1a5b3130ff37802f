//! The page: a drop zone, one card per image, and the gallery of earlier uploads: found by
//! label, deleted one by one, exported.
//!
//! Components only render; decisions live in [`crate::logic`] and requests in [`crate::net`].

use crate::logic::{
    Backoff, GalleryQuery, LabelCount, Phase, ResultView, Step, caption_size, check_file,
    chip_name, fit_in_stage, format_bytes, result_view, search_status,
};
use crate::net::{self, Backend, Failure};
use leptos::ev;
use leptos::prelude::*;
use leptos::reactive::callback::{Callable, UnsyncCallback};
use leptos::task::spawn_local;
use snaplabel_core::api::UploadSummary;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::JsCast;

/// Uploads running at once; the rest wait their turn (phones on slow links stay responsive).
const UPLOAD_SLOTS: usize = 3;
/// Width : height of every card's image area, fixed so nothing moves as images and results arrive.
const STAGE_RATIO: f64 = 4.0 / 3.0;
/// Labels listed before "N more labels".
const VISIBLE_LABELS: usize = 6;
/// Label chips shown before "All labels".
const VISIBLE_CHIPS: usize = 12;
/// Typing pauses this long before the search runs.
const SEARCH_DELAY_MS: u32 = 250;
/// The search field's id (focus returns there after a deletion).
const SEARCH_INPUT_ID: &str = "gallery-search";

/// Where a card's deletion stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    Idle,
    /// "Delete this photo?" is asked, with Delete and Keep.
    Confirming,
    Deleting,
    Failed(String),
    /// Gone: the card has left the page and stops polling for its result.
    Deleted,
}

/// One image on the page. All fields are reactive handles, so a card is cheap to clone into
/// closures.
#[derive(Clone)]
pub struct Card {
    pub key: u64,
    /// The upload's id, once the server gave one.
    pub id: RwSignal<Option<String>>,
    pub name: String,
    pub size: Option<u64>,
    pub phase: RwSignal<Phase>,
    pub image_src: RwSignal<Option<String>>,
    /// Natural size of the loaded image, until the result says the upright size.
    pub natural_size: RwSignal<Option<(u32, u32)>>,
    pub result: RwSignal<Option<Arc<ResultView>>>,
    /// The label row (and its boxes) under the pointer or keyboard focus.
    pub highlighted: RwSignal<Option<usize>>,
    pub removal: RwSignal<Removal>,
}

impl Card {
    fn new(name: String, size: Option<u64>, phase: Phase, image_src: Option<String>) -> Card {
        thread_local!(static NEXT: Cell<u64> = const { Cell::new(1) });
        Card {
            key: NEXT.with(|n| n.replace(n.get() + 1)),
            id: RwSignal::new(None),
            name,
            size,
            phase: RwSignal::new(phase),
            image_src: RwSignal::new(image_src),
            natural_size: RwSignal::new(None),
            result: RwSignal::new(None),
            highlighted: RwSignal::new(None),
            removal: RwSignal::new(Removal::Idle),
        }
    }
}

/// Page-wide state that is not reactive (and not `Send`): the backend and the upload queue.
struct Uploader {
    backend: Rc<Backend>,
    waiting: RefCell<VecDeque<(Card, web_sys::File, String)>>,
    running: Cell<usize>,
    announce: RwSignal<String>,
    /// Counts photos labeled since the page opened (the gallery's chips follow it).
    labeled: RwSignal<u64>,
}

impl Uploader {
    /// Starts waiting uploads while slots are free.
    fn pump(self: &Rc<Self>) {
        while self.running.get() < UPLOAD_SLOTS {
            let Some((card, file, content_type)) = self.waiting.borrow_mut().pop_front() else {
                return;
            };
            self.running.set(self.running.get() + 1);
            let this = self.clone();
            spawn_local(async move {
                this.run(&card, &file, &content_type).await;
                this.running.set(this.running.get() - 1);
                this.pump();
            });
        }
    }

    /// Moves the card on and announces its new phase.
    fn step(&self, card: &Card, step: Step) {
        if advance(card.phase, step) {
            let text = format!("{}: {}", card.name, card.phase.get_untracked().describe());
            self.announce.set(text);
        }
    }

    fn fail(&self, card: &Card, failure: Failure) {
        self.step(
            card,
            Step::Failed {
                code: failure.code,
                message: failure.message,
            },
        );
    }

    async fn run(&self, card: &Card, file: &web_sys::File, content_type: &str) {
        self.step(card, Step::Start);
        let size = file.size() as u64;
        let created = match self
            .backend
            .create_upload(&card.name, content_type, size)
            .await
        {
            Ok(created) => created,
            Err(failure) => return self.fail(card, failure),
        };
        card.id.set(Some(created.id.clone()));
        self.step(card, Step::UrlGranted { total: size });
        // Progress is shown, not announced.
        let phase = card.phase;
        let progress = move |sent, total| {
            advance(phase, Step::Progress { sent, total });
        };
        if let Err(failure) = net::upload(&created.upload, file, progress).await {
            return self.fail(card, failure);
        }
        self.step(card, Step::Uploaded);
        self.await_result(card, &created.result.head_url, &created.result.get_url)
            .await;
        if card.phase.get_untracked() == Phase::Done {
            self.labeled.update(|n| *n += 1);
        }
    }

    async fn await_result(&self, card: &Card, head_url: &str, get_url: &str) {
        let removal = card.removal;
        let wanted = move || removal.get_untracked() != Removal::Deleted;
        match net::wait_for_result(head_url, get_url, Backoff::default(), wanted).await {
            Ok(doc) => {
                let view = result_view(&doc);
                // The announcement names the labels (or the failure), not just the new phase.
                let announcement = crate::logic::announce_result(&card.name, &view);
                let step = match &view.error {
                    Some((code, message)) => Step::Failed {
                        code: code.clone(),
                        message: message.clone(),
                    },
                    None => Step::Labeled,
                };
                card.result.set(Some(Arc::new(view)));
                advance(card.phase, step);
                self.announce.set(announcement);
            }
            Err(failure) => self.fail(card, failure),
        }
    }
}

/// Moves a card's phase on; `false` when the step does not apply here (see [`Phase::next`]).
fn advance(phase: RwSignal<Phase>, step: Step) -> bool {
    let mut changed = false;
    phase.update(|p| {
        if let Some(next) = p.next(step) {
            *p = next;
            changed = true;
        }
    });
    changed
}

fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

#[component]
pub fn App() -> impl IntoView {
    let cards = RwSignal::new(Vec::<Card>::new());
    let history = RwSignal::new(Vec::<Card>::new());
    let older = RwSignal::new(None::<String>);
    let announce = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let ready = RwSignal::new(false);
    let labeled = RwSignal::new(0u64);
    let uploader = StoredValue::new_local(None::<Rc<Uploader>>);
    let gallery = Gallery::new();

    // Cards of a history or search page, each fetching its own result.
    let show_page = move |up: Rc<Uploader>, summaries: &[UploadSummary]| -> Vec<Card> {
        let new: Vec<Card> = summaries.iter().map(history_card).collect();
        for (card, summary) in new.iter().cloned().zip(summaries.iter().cloned()) {
            let up = up.clone();
            spawn_local(async move {
                up.await_result(&card, &summary.result.head_url, &summary.result.get_url)
                    .await;
            });
        }
        new
    };

    let load_history = move |before: Option<String>| {
        let Some(up) = uploader.get_value() else {
            return;
        };
        spawn_local(async move {
            match up.backend.history(before.as_deref()).await {
                Ok(page) => {
                    older.set(page.next_before.clone());
                    let new = show_page(up, &page.uploads);
                    history.update(|h| h.extend(new));
                }
                Err(failure) => problem.set(Some(format!(
                    "Earlier uploads could not be loaded: {}",
                    failure.message
                ))),
            }
        });
    };

    let refresh_chips = move || {
        let Some(up) = uploader.get_value() else {
            return;
        };
        spawn_local(async move {
            if let Ok(labels) = up.backend.gallery_labels().await {
                gallery.chips.set(labels.labels);
            }
        });
    };
    // New labels, new chips.
    Effect::new(move |_| {
        labeled.track();
        refresh_chips();
    });

    // Runs a search (or, with `None`, goes back to the whole history). Only the newest search's
    // answer is shown: a slow answer to an earlier query never replaces a newer one's.
    let run_search = move |query: Option<GalleryQuery>, before: Option<String>| {
        let Some(up) = uploader.get_value() else {
            return;
        };
        let seq = gallery.sequence.get_value() + 1;
        gallery.sequence.set_value(seq);
        let Some(query) = query else {
            gallery.query.set(None);
            gallery.results.set(Vec::new());
            gallery.next.set(None);
            gallery.status.set(String::new());
            return;
        };
        gallery.query.set(Some(query.clone()));
        gallery.searching.set(true);
        spawn_local(async move {
            let answer = up.backend.search(&query, before.as_deref()).await;
            if gallery.sequence.get_value() != seq {
                return;
            }
            gallery.searching.set(false);
            match answer {
                Ok(answer) => {
                    let status = search_status(&query, answer.total, &answer.labels);
                    let new = show_page(up, &answer.uploads);
                    gallery.next.set(answer.next_before.clone());
                    gallery.total.set(answer.total);
                    gallery.matched.set(answer.labels.clone());
                    if before.is_some() {
                        gallery.results.update(|r| r.extend(new));
                    } else {
                        gallery.results.set(new);
                        gallery.status.set(status.clone());
                        announce.set(status);
                    }
                }
                Err(failure) => gallery
                    .status
                    .set(format!("The search failed: {}", failure.message)),
            }
        });
    };

    let delete_card = UnsyncCallback::new(move |card: Card| {
        let (Some(up), Some(id)) = (uploader.get_value(), card.id.get_untracked()) else {
            return;
        };
        card.removal.set(Removal::Deleting);
        spawn_local(async move {
            match up.backend.delete_upload(&id).await {
                // `not_found`: gone already (deleted in another tab), the same outcome.
                Err(failure) if failure.code != "not_found" => {
                    card.removal.set(Removal::Failed(failure.message));
                }
                _ => {
                    card.removal.set(Removal::Deleted);
                    let keep = |list: &mut Vec<Card>| list.retain(|c| c.key != card.key);
                    let found_before = gallery.results.with_untracked(Vec::len);
                    cards.update(keep);
                    history.update(keep);
                    gallery.results.update(keep);
                    if gallery.results.with_untracked(Vec::len) < found_before {
                        gallery.total.update(|t| *t = t.saturating_sub(1));
                        if let Some(query) = gallery.query.get_untracked() {
                            gallery.status.set(search_status(
                                &query,
                                gallery.total.get_untracked(),
                                &gallery.matched.get_untracked(),
                            ));
                        }
                    }
                    announce.set(format!("{} deleted.", card.name));
                    focus_by_id(SEARCH_INPUT_ID);
                    refresh_chips();
                }
            }
        });
    });

    let export = move |format: &'static str| {
        let Some(up) = uploader.get_value() else {
            return;
        };
        gallery.exporting.set(Some(format));
        spawn_local(async move {
            match up.backend.export(format).await {
                Ok(file) => {
                    start_download(&file.url, &file.filename);
                    let photos = if file.uploads == 1 { "photo" } else { "photos" };
                    announce.set(format!(
                        "Downloading {}: the labels of {} {photos}.",
                        file.filename, file.uploads
                    ));
                    gallery.download.set(Some((file.url, file.filename)));
                }
                Err(failure) => problem.set(Some(format!(
                    "The labels could not be exported: {}",
                    failure.message
                ))),
            }
            gallery.exporting.set(None);
        });
    };

    spawn_local(async move {
        match net::load_config().await {
            Ok(config) => {
                uploader.set_value(Some(Rc::new(Uploader {
                    backend: Backend::new(config),
                    waiting: RefCell::new(VecDeque::new()),
                    running: Cell::new(0),
                    announce,
                    labeled,
                })));
                ready.set(true);
                load_history(None);
                refresh_chips();
            }
            Err(failure) => {
                problem.set(Some(format!("snaplabel cannot start: {}", failure.message)))
            }
        }
    });

    let add_files = move |files: Vec<web_sys::File>| {
        let Some(up) = uploader.get_value() else {
            problem.set(Some("Still starting; try again in a moment.".into()));
            return;
        };
        let limits = up.backend.config.limits.clone();
        let mut added = Vec::new();
        for file in files {
            let name = file.name();
            let size = file.size() as u64;
            let preview = file
                .type_()
                .starts_with("image/")
                .then(|| web_sys::Url::create_object_url_with_blob(&file).ok())
                .flatten();
            match check_file(&name, &file.type_(), size, &limits) {
                Ok(content_type) => {
                    let card = Card::new(name, Some(size), Phase::Queued, preview);
                    up.waiting
                        .borrow_mut()
                        .push_back((card.clone(), file, content_type));
                    added.push(card);
                }
                Err(rejection) => {
                    announce.set(format!("{name}: {}", rejection.message));
                    added.push(Card::new(
                        name,
                        Some(size),
                        Phase::Failed {
                            code: rejection.code.into(),
                            message: rejection.message,
                        },
                        preview,
                    ));
                }
            }
        }
        if !added.is_empty() {
            // New photos are shown where they are being uploaded: a search that would hide
            // them ends.
            if gallery.query.with_untracked(Option::is_some) {
                gallery.text.set(String::new());
                run_search(None, None);
            }
            let count = added.len();
            cards.update(|c| {
                added.reverse();
                added.append(c);
                *c = added;
            });
            if count > 1 {
                announce.set(format!("{count} files added"));
            }
        }
        up.pump();
    };

    // Paste anywhere on the page.
    let paste = window_event_listener(ev::paste, move |e: web_sys::ClipboardEvent| {
        let files = files_of(e.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            e.prevent_default();
            add_files(files);
        }
    });
    on_cleanup(move || paste.remove());

    let searching = move || gallery.query.with(Option::is_some);
    view! {
        <header class="top">
            <h1>"snaplabel"</h1>
            <p class="tagline">"Drop photos, get labels — straight to storage, labeled where they land."</p>
        </header>
        <main>
            <DropZone enabled=ready on_files=add_files />
            <p class="problem" role="alert">{move || problem.get()}</p>
            <div class="visually-hidden" role="status" aria-live="polite">{move || announce.get()}</div>
            <GalleryBar gallery enabled=ready run_search export />
            // A search shows what it found, among every upload; the page's own uploads and the
            // history come back with "Show all".
            <Show when=searching>
                <section class="cards results" aria-label="Photos found" aria-busy=move || gallery.searching.get().to_string()>
                    <For each=move || gallery.results.get() key=|c| c.key let:card>
                        <CardView card on_delete=delete_card />
                    </For>
                </section>
                <Show when=move || gallery.next.with(Option::is_some)>
                    <button
                        class="button secondary more"
                        on:click=move |_| run_search(gallery.query.get_untracked(), gallery.next.get_untracked())
                    >
                        "Show more photos"
                    </button>
                </Show>
            </Show>
            <Show when=move || !searching()>
                <section class="cards" aria-label="Your uploads">
                    <For each=move || cards.get() key=|c| c.key let:card>
                        <CardView card on_delete=delete_card />
                    </For>
                </section>
                <Show when=move || !history.with(Vec::is_empty)>
                    <h2 class="section-title">"Earlier uploads"</h2>
                </Show>
                <section class="cards history" aria-label="Earlier uploads">
                    <For each=move || history.get() key=|c| c.key let:card>
                        <CardView card on_delete=delete_card />
                    </For>
                </section>
                <Show when=move || older.with(Option::is_some)>
                    <button class="button secondary more" on:click=move |_| load_history(older.get_untracked())>
                        "Show older uploads"
                    </button>
                </Show>
            </Show>
        </main>
    }
}

/// The gallery's state: the search and its results, the label chips, the export.
#[derive(Clone, Copy)]
struct Gallery {
    query: RwSignal<Option<GalleryQuery>>,
    /// What the search field holds (a chip's label when one was chosen).
    text: RwSignal<String>,
    results: RwSignal<Vec<Card>>,
    next: RwSignal<Option<String>>,
    total: RwSignal<usize>,
    matched: RwSignal<Vec<LabelCount>>,
    status: RwSignal<String>,
    searching: RwSignal<bool>,
    /// Numbers searches, so that only the newest one's answer is shown.
    sequence: StoredValue<u64>,
    chips: RwSignal<Vec<LabelCount>>,
    exporting: RwSignal<Option<&'static str>>,
    /// The last export's URL and file name (a link to fetch it again).
    download: RwSignal<Option<(String, String)>>,
}

impl Gallery {
    fn new() -> Gallery {
        Gallery {
            query: RwSignal::new(None),
            text: RwSignal::new(String::new()),
            results: RwSignal::new(Vec::new()),
            next: RwSignal::new(None),
            total: RwSignal::new(0),
            matched: RwSignal::new(Vec::new()),
            status: RwSignal::new(String::new()),
            searching: RwSignal::new(false),
            sequence: StoredValue::new(0),
            chips: RwSignal::new(Vec::new()),
            exporting: RwSignal::new(None),
            download: RwSignal::new(None),
        }
    }
}

/// Search field, label chips and the export buttons.
#[component]
fn GalleryBar(
    gallery: Gallery,
    enabled: RwSignal<bool>,
    run_search: impl Fn(Option<GalleryQuery>, Option<String>) + Copy + Send + Sync + 'static,
    export: impl Fn(&'static str) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let pending = StoredValue::new_local(None::<gloo_timers::callback::Timeout>);
    let all_chips = RwSignal::new(false);
    let search_now = move || {
        pending.set_value(None);
        run_search(
            GalleryQuery::from_input(&gallery.text.get_untracked()),
            None,
        );
    };
    let on_input = move |e: ev::Event| {
        gallery.text.set(event_target_value(&e));
        // Dropping the previous timeout cancels it: one search per pause in typing.
        pending.set_value(Some(gloo_timers::callback::Timeout::new(
            SEARCH_DELAY_MS,
            search_now,
        )));
    };
    let clear = move || {
        gallery.text.set(String::new());
        pending.set_value(None);
        run_search(None, None);
    };
    let chips = move || {
        let chosen = gallery.query.get();
        let shown = if all_chips.get() {
            usize::MAX
        } else {
            VISIBLE_CHIPS
        };
        gallery
            .chips
            .get()
            .into_iter()
            .take(shown)
            .map(|chip| {
                let pressed = chosen == Some(GalleryQuery::Label(chip.name.clone()));
                let label = chip.name.clone();
                view! {
                    <li>
                        <button
                            type="button"
                            class="chip-button"
                            aria-pressed=pressed.to_string()
                            aria-label=chip_name(&chip)
                            on:click=move |_| {
                                if pressed {
                                    clear();
                                } else {
                                    gallery.text.set(label.clone());
                                    pending.set_value(None);
                                    run_search(Some(GalleryQuery::Label(label.clone())), None);
                                }
                            }
                        >
                            {chip.name.clone()}
                            <span class="count" aria-hidden="true">{chip.count}</span>
                        </button>
                    </li>
                }
            })
            .collect_view()
    };
    let hidden_chips = move || gallery.chips.with(Vec::len).saturating_sub(VISIBLE_CHIPS);
    view! {
        <section class="gallery" aria-labelledby="gallery-title">
            <h2 id="gallery-title" class="section-title">"Your photos"</h2>
            <form
                role="search"
                class="search"
                on:submit=move |e: ev::SubmitEvent| {
                    e.prevent_default();
                    search_now();
                }
            >
                <label for=SEARCH_INPUT_ID>"Find photos by label"</label>
                <div class="search-line">
                    <input
                        id=SEARCH_INPUT_ID
                        type="search"
                        placeholder="dog, animal, food…"
                        autocomplete="off"
                        spellcheck="false"
                        maxlength="100"
                        disabled=move || !enabled.get()
                        prop:value=move || gallery.text.get()
                        on:input=on_input
                        on:keydown=move |e: ev::KeyboardEvent| {
                            if e.key() == "Escape" {
                                clear();
                            }
                        }
                    />
                    <button type="submit" class="button" disabled=move || !enabled.get()>"Search"</button>
                    <Show when=move || gallery.query.with(Option::is_some)>
                        <button type="button" class="button secondary" on:click=move |_| clear()>
                            "Show all"
                        </button>
                    </Show>
                </div>
            </form>
            <Show when=move || !gallery.chips.with(Vec::is_empty)>
                <ul class="label-chips" aria-label="Labels in your photos">{chips}</ul>
                <Show when=move || { hidden_chips() > 0 }>
                    <FoldToggle
                        open=all_chips
                        class="button small secondary"
                        more=move || format!("All {} labels", gallery.chips.with(Vec::len))
                    />
                </Show>
                <div class="export" role="group" aria-labelledby="export-title">
                    <span id="export-title">"Download your labels:"</span>
                    {["csv", "ndjson"]
                        .map(|format| {
                            view! {
                                <button
                                    type="button"
                                    class="button small secondary"
                                    disabled=move || gallery.exporting.get().is_some()
                                    on:click=move |_| export(format)
                                >
                                    {format.to_uppercase()}
                                </button>
                            }
                        })
                        .collect_view()}
                    <span class="muted" aria-hidden="true">
                        {move || gallery.exporting.get().map(|f| format!("Preparing {}…", f.to_uppercase()))}
                    </span>
                    {move || {
                        gallery
                            .download
                            .get()
                            .map(|(url, name)| {
                                view! { <a class="download-link" href=url download=name.clone()>{name.clone()}</a> }
                            })
                    }}
                </div>
            </Show>
            <p class="search-status">{move || gallery.status.get()}</p>
        </section>
    }
}

/// Starts a browser download of `url` (served as an attachment) without leaving the page.
fn start_download(url: &str, filename: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(link) = document.create_element("a") else {
        return;
    };
    let _ = link.set_attribute("href", url);
    let _ = link.set_attribute("download", filename);
    if let (Some(body), Ok(link)) = (document.body(), link.dyn_into::<web_sys::HtmlElement>()) {
        let _ = body.append_child(&link);
        link.click();
        link.remove();
    }
}

/// Moves keyboard focus to the element with this id, once the page has been drawn.
fn focus_by_id(id: impl Into<String>) {
    let id = id.into();
    request_animation_frame(move || {
        if let Some(element) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(&id))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = element.focus();
        }
    });
}

fn history_card(summary: &UploadSummary) -> Card {
    let name = summary
        .filename
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| summary.id.clone());
    let card = Card::new(
        name,
        Some(summary.size),
        Phase::Labeling,
        Some(summary.image_url.clone()),
    );
    card.id.set(Some(summary.id.clone()));
    card
}

#[component]
fn DropZone(
    enabled: RwSignal<bool>,
    on_files: impl Fn(Vec<web_sys::File>) + Copy + 'static,
) -> impl IntoView {
    let over = RwSignal::new(false);
    view! {
        <section
            class="drop"
            class:over=move || over.get()
            aria-label="Add photos"
            on:dragover=move |e: ev::DragEvent| {
                e.prevent_default();
                over.set(true);
            }
            on:dragleave=move |_| over.set(false)
            on:drop=move |e: ev::DragEvent| {
                e.prevent_default();
                over.set(false);
                on_files(files_of(e.data_transfer().and_then(|d| d.files())));
            }
        >
            <p class="drop-title">"Drop photos here"</p>
            <p class="drop-hint">"or paste them, or"</p>
            <div class="drop-actions">
                <FilePicker
                    id="file-input"
                    label="Choose photos"
                    class="button"
                    multiple=true
                    capture=None
                    enabled
                    on_files
                />
                <FilePicker
                    id="camera-input"
                    label="Take a photo"
                    class="button secondary camera"
                    multiple=false
                    capture=Some("environment")
                    enabled
                    on_files
                />
            </div>
            <p class="drop-limits">"JPEG, PNG, WebP, GIF, BMP or TIFF"</p>
        </section>
    }
}

/// A button that opens the system's file picker (or camera). The input itself stays hidden and
/// out of the tab order: the button is what people and keyboards use.
#[component]
fn FilePicker(
    id: &'static str,
    label: &'static str,
    class: &'static str,
    multiple: bool,
    capture: Option<&'static str>,
    enabled: RwSignal<bool>,
    on_files: impl Fn(Vec<web_sys::File>) + Copy + 'static,
) -> impl IntoView {
    let input = NodeRef::<leptos::html::Input>::new();
    view! {
        <button
            class=class
            disabled=move || !enabled.get()
            on:click=move |_| {
                if let Some(i) = input.get() {
                    i.click()
                }
            }
        >
            {label}
        </button>
        <input
            id=id
            node_ref=input
            class="visually-hidden"
            type="file"
            multiple=multiple
            accept="image/*"
            capture=capture
            tabindex="-1"
            aria-label=label
            on:change=move |_| {
                if let Some(i) = input.get() {
                    let files = files_of(i.files());
                    // Clearing lets the same file be chosen again.
                    i.set_value("");
                    on_files(files);
                }
            }
        />
    }
}

#[component]
fn CardView(card: Card, on_delete: UnsyncCallback<Card>) -> impl IntoView {
    let delete_control = view! { <DeleteControl card=card.clone() on_delete /> };
    let Card {
        name,
        size,
        phase,
        image_src,
        natural_size,
        result,
        highlighted,
        ..
    } = card;
    let frame_style = move || {
        let size = result
            .with(|r| r.as_ref().and_then(|r| r.image_size))
            .or_else(|| natural_size.get());
        let fit = size
            .map(|(w, h)| fit_in_stage(w, h, STAGE_RATIO))
            .unwrap_or(fit_in_stage(0, 0, STAGE_RATIO));
        format!(
            "left:{:.3}%;top:{:.3}%;width:{:.3}%;height:{:.3}%",
            fit.left, fit.top, fit.width, fit.height
        )
    };
    let on_image_load = move |e: ev::Event| {
        if let Some(img) = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlImageElement>().ok())
        {
            natural_size.set(Some((img.natural_width(), img.natural_height())));
        }
    };
    let alt = name.clone();
    view! {
        <article class=move || format!("card {}", phase.with(Phase::css)) aria-label=name.clone()>
            <div class="stage">
                <div class="frame" style=frame_style>
                    {move || match image_src.get() {
                        Some(src) => {
                            view! {
                                <img
                                    src=src
                                    alt=alt.clone()
                                    on:load=on_image_load
                                    on:error=move |_| image_src.set(None)
                                />
                            }
                                .into_any()
                        }
                        // Not an image the browser can show (or not an image at all).
                        None => view! { <span class="no-preview">"No preview"</span> }.into_any(),
                    }}
                    {move || result.get().map(|view| view! { <Boxes view highlighted /> })}
                </div>
            </div>
            <div class="card-head">
                <h3 class="file-name" title=name.clone()>{name.clone()}</h3>
                <span class="file-size">{size.map(format_bytes)}</span>
            </div>
            {delete_control}
            <Status phase />
            {move || match result.get() {
                Some(view) => view! { <Labels view highlighted /> }.into_any(),
                // Room for the labels while they are on their way, so the cards below do not
                // jump when they arrive.
                None if !phase.with(Phase::is_finished) => view! { <LabelsPlaceholder /> }.into_any(),
                None => ().into_any(),
            }}
        </article>
    }
}

/// Delete, then "Delete this photo and its labels?" with Delete and Keep. Offered once the
/// photo is stored (an upload still on its way has nothing to delete yet). Focus moves to the
/// question's Delete button; Escape or Keep puts it back on the card's Delete.
#[component]
fn DeleteControl(card: Card, on_delete: UnsyncCallback<Card>) -> impl IntoView {
    let Card {
        key,
        id,
        phase,
        removal,
        ..
    } = card.clone();
    let ask_id = format!("delete-{key}");
    let confirm_id = format!("delete-confirm-{key}");
    let stored = move || {
        id.with(Option::is_some)
            && phase.with(|p| matches!(p, Phase::Labeling | Phase::Done | Phase::Failed { .. }))
    };
    let cancel = {
        let ask_id = ask_id.clone();
        move || {
            removal.set(Removal::Idle);
            focus_by_id(ask_id.clone());
        }
    };
    let name = card.name.clone();
    view! {
        <Show when=stored>
            <div class="card-actions">
                {
                    let card = card.clone();
                    let name = name.clone();
                    let ask_id = ask_id.clone();
                    let confirm_id = confirm_id.clone();
                    let cancel = cancel.clone();
                    move || match removal.get() {
                        Removal::Idle | Removal::Failed(_) => {
                            let confirm_id = confirm_id.clone();
                            view! {
                                <button
                                    id=ask_id.clone()
                                    type="button"
                                    class="button small secondary"
                                    aria-label=format!("Delete {name}")
                                    on:click=move |_| {
                                        removal.set(Removal::Confirming);
                                        focus_by_id(confirm_id.clone());
                                    }
                                >
                                    "Delete"
                                </button>
                                {move || match removal.get() {
                                    Removal::Failed(message) => Some(view! { <p class="error" role="alert">{message}</p> }),
                                    _ => None,
                                }}
                            }
                                .into_any()
                        }
                        Removal::Confirming => {
                            let card = card.clone();
                            let cancel_key = cancel.clone();
                            let cancel_click = cancel.clone();
                            view! {
                                <div
                                    class="confirm"
                                    role="group"
                                    aria-label=format!("Delete {name}?")
                                    on:keydown=move |e: ev::KeyboardEvent| {
                                        if e.key() == "Escape" {
                                            cancel_key();
                                        }
                                    }
                                >
                                    <span>"Delete this photo and its labels?"</span>
                                    <button
                                        id=confirm_id.clone()
                                        type="button"
                                        class="button small danger"
                                        on:click=move |_| on_delete.run(card.clone())
                                    >
                                        "Delete"
                                    </button>
                                    <button type="button" class="button small secondary" on:click=move |_| cancel_click()>
                                        "Keep"
                                    </button>
                                </div>
                            }
                                .into_any()
                        }
                        Removal::Deleting | Removal::Deleted => view! { <span class="state">"Deleting…"</span> }.into_any(),
                    }
                }
            </div>
        </Show>
    }
}

#[component]
fn Status(phase: RwSignal<Phase>) -> impl IntoView {
    view! {
        <div class="status">
            {move || {
                let p = phase.get();
                match &p {
                    Phase::Uploading { .. } => {
                        let percent = p.upload_fraction().unwrap_or(0.0) * 100.0;
                        view! {
                            <div class="progress-line">
                                <span class="state">{p.describe()}</span>
                                <progress max="100" value=format!("{percent:.0}") aria-label="Upload progress"></progress>
                            </div>
                        }
                            .into_any()
                    }
                    Phase::Labeling | Phase::RequestingUrl | Phase::Queued => {
                        view! {
                            <div class="progress-line">
                                <span class="spinner" aria-hidden="true"></span>
                                <span class="state">{p.describe()}</span>
                            </div>
                        }
                            .into_any()
                    }
                    Phase::Done => view! { <span class="state ok">"Labeled"</span> }.into_any(),
                    Phase::Failed { code, message } => {
                        view! {
                            <p class="error" data-code=code.clone()>
                                <strong>"Failed: "</strong>
                                {message.clone()}
                            </p>
                        }
                            .into_any()
                    }
                }
            }}
        </div>
    }
}

/// Ends row `row`'s highlight, and only its own: the pointer leaving one row (or the list moving
/// under a still pointer) must not end the highlight the keyboard gave another.
fn unhighlight(highlighted: RwSignal<Option<usize>>, row: usize) {
    if highlighted.get_untracked() == Some(row) {
        highlighted.set(None);
    }
}

#[component]
fn Boxes(view: Arc<ResultView>, highlighted: RwSignal<Option<usize>>) -> impl IntoView {
    let Some((w, h)) = view.image_size.filter(|_| !view.boxes.is_empty()) else {
        return ().into_any();
    };
    let font = caption_size(w, h);
    let boxes = view
        .boxes
        .iter()
        .map(|b| {
            let rows = b.rows.clone();
            let first = rows[0];
            view! {
                <g
                    class="box"
                    class:active=move || highlighted.get().is_some_and(|r| rows.contains(&r))
                    on:mouseenter=move |_| highlighted.set(Some(first))
                    on:mouseleave=move |_| unhighlight(highlighted, first)
                >
                    <rect x=b.x y=b.y width=b.width height=b.height vector-effect="non-scaling-stroke"></rect>
                    {(!b.caption.is_empty()).then(|| {
                        view! {
                            <text x=b.x + font * 0.25 y=b.caption_y font-size=font>{b.caption.clone()}</text>
                        }
                    })}
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="boxes" viewBox=format!("0 0 {w} {h}") preserveAspectRatio="none" aria-hidden="true">
            {boxes}
        </svg>
    }
    .into_any()
}

#[component]
fn Labels(view: Arc<ResultView>, highlighted: RwSignal<Option<usize>>) -> impl IntoView {
    let show_json = RwSignal::new(false);
    let copied = RwSignal::new(None::<&'static str>);
    let json = view.pretty_json.clone();
    let copy = {
        let json = json.clone();
        move |_| {
            let Some(window) = web_sys::window() else {
                return;
            };
            let promise = window.navigator().clipboard().write_text(&json);
            spawn_local(async move {
                let ok = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
                copied.set(Some(if ok { "Copied" } else { "Copy failed" }));
            });
        }
    };
    if view.error.is_some() {
        return view! {
            <div class="result">
                <JsonToggle show_json json copy copied />
            </div>
        }
        .into_any();
    }
    let show_all = RwSignal::new(false);
    let hidden_rows = view.rows.len().saturating_sub(VISIBLE_LABELS);
    let rows = view
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let folded = i >= VISIBLE_LABELS;
            let chips = row
                .parents
                .iter()
                .map(|p| view! { <li class="chip">{p.clone()}</li> })
                .chain(
                    row.categories
                        .iter()
                        .map(|c| view! { <li class="chip category">{c.clone()}</li> }),
                )
                .collect_view();
            let has_box = !row.boxes.is_empty();
            let confidence = row.confidence;
            view! {
                <li
                    class="label"
                    class:folded=move || folded && !show_all.get()
                    class:active=move || highlighted.get() == Some(i)
                    class:has-box=has_box
                    tabindex="0"
                    on:mouseenter=move |_| highlighted.set(Some(i))
                    on:mouseleave=move |_| unhighlight(highlighted, i)
                    on:focus=move |_| highlighted.set(Some(i))
                    on:blur=move |_| unhighlight(highlighted, i)
                >
                    <div class="label-line">
                        <span class="label-name">{row.name.clone()}</span>
                        <span class="confidence">{format!("{confidence:.1}%")}</span>
                    </div>
                    <div
                        class="bar"
                        role="meter"
                        aria-valuemin="0"
                        aria-valuemax="100"
                        aria-valuenow=format!("{confidence:.0}")
                        aria-label=format!("{} confidence", row.name)
                    >
                        <span style=format!("width:{confidence:.1}%")></span>
                    </div>
                    <ul class="chips" aria-label="Parents and categories">{chips}</ul>
                </li>
            }
        })
        .collect_view();
    let empty = view.rows.is_empty();
    let colors = view
        .colors
        .iter()
        .map(|c| {
            view! {
                <li class="swatch-item">
                    <span class="swatch" style=format!("background:{}", c.hex)></span>
                    <span>{c.name.clone()}</span>
                    <span class="muted">{format!("{:.0}%", c.percent)}</span>
                </li>
            }
        })
        .collect_view();
    let quality = view.quality.map(|q| {
        view! {
            <dl class="quality">
                <div><dt>"Brightness"</dt><dd>{format!("{:.0}", q.brightness)}</dd></div>
                <div><dt>"Sharpness"</dt><dd>{format!("{:.0}", q.sharpness)}</dd></div>
                <div><dt>"Contrast"</dt><dd>{format!("{:.0}", q.contrast)}</dd></div>
            </dl>
        }
    });
    let labeler = view.labeler.clone();
    view! {
        <div class="result">
            <Show when=move || empty>
                <p class="muted">"Nothing recognised with enough confidence."</p>
            </Show>
            <ol class="labels" aria-label="Labels">{rows}</ol>
            <Show when=move || { hidden_rows > 0 }>
                <FoldToggle
                    open=show_all
                    class="button small secondary fold"
                    more=move || format!("{hidden_rows} more labels")
                />
            </Show>
            <ul class="swatches" aria-label="Dominant colours">{colors}</ul>
            {quality}
            <p class="labeler muted">{labeler}</p>
            <JsonToggle show_json json copy copied />
        </div>
    }
    .into_any()
}

/// Shows or hides the rest of a long list of labels: "6 more labels" / "Fewer labels".
#[component]
fn FoldToggle(
    open: RwSignal<bool>,
    class: &'static str,
    more: impl Fn() -> String + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <button
            type="button"
            class=class
            aria-expanded=move || open.get().to_string()
            on:click=move |_| open.update(|o| *o = !*o)
        >
            {move || if open.get() { "Fewer labels".to_string() } else { more() }}
        </button>
    }
}

#[component]
fn LabelsPlaceholder() -> impl IntoView {
    let rows = (0..VISIBLE_LABELS)
        .map(|_| {
            view! {
                <li class="label">
                    <div class="label-line"><span class="skeleton-text"></span></div>
                    <div class="bar"></div>
                    <div class="skeleton-chips"></div>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="result placeholder" aria-hidden="true">
            <ol class="labels">{rows}</ol>
        </div>
    }
}

#[component]
fn JsonToggle(
    show_json: RwSignal<bool>,
    json: String,
    copy: impl Fn(ev::MouseEvent) + 'static,
    copied: RwSignal<Option<&'static str>>,
) -> impl IntoView {
    view! {
        <div class="json-tools">
            <button
                class="button small secondary"
                aria-expanded=move || show_json.get().to_string()
                on:click=move |_| show_json.update(|s| *s = !*s)
            >
                {move || if show_json.get() { "Hide JSON" } else { "Show JSON" }}
            </button>
            <button class="button small secondary" on:click=copy>"Copy JSON"</button>
            <span class="muted" aria-live="polite">{move || copied.get()}</span>
        </div>
        <Show when=move || show_json.get()>
            <pre class="json">{json.clone()}</pre>
        </Show>
    }
}
