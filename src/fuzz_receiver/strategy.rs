//! Proptest strategies for Docker Hub payloads full of edge cases, shared by
//! `hubmock fuzz-receiver` and the property tests.
//!
//! Every strategy shrinks towards something a person can read: strings towards short runs of
//! `a`, characters towards ASCII letters, padded strings towards the shortest boundary length
//! that still fails, lists towards empty, optional fields towards absent.
//!
//! ```
//! use hubmock::fuzz_receiver::strategy;
//! use hubmock::{Payload, PayloadFormat};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let tree = strategy::payload(PayloadFormat::Current, "http://127.0.0.1:9".to_owned())
//!     .new_tree(&mut runner)
//!     .unwrap();
//! let payload: Payload = tree.current();
//! assert!(payload.push_data.images.is_absent()); // the current format has no `images`
//! assert!(payload.callback_url.starts_with("http://127.0.0.1:9/"));
//! ```

use std::ops::RangeInclusive;

use proptest::char::CharStrategy;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use crate::model::chain::callback_url;
use crate::model::format::PayloadFormat;
use crate::model::payload::{Count, Payload, PayloadRepository, PushData, Seconds};
use crate::model::repository::{RepoName, LIBRARY};

/// Characters receivers mishandle, drawn half of the time by [`fuzz_char`]'s second class:
/// ASCII with a meaning in JSON, shells, HTML, URLs and format strings; control characters;
/// accents, precomposed and combining; right-to-left letters, marks, embeddings, overrides and
/// isolates; a no-break space, the byte order mark, zero-width characters, the line and
/// paragraph separators (raw in JavaScript string literals before ES2019), the replacement
/// character and a non-character; CJK; emoji and other astral characters.
const AWKWARD_CHARS: &[char] = &[
    '"',
    '\\',
    '\'',
    '`',
    '/',
    '<',
    '>',
    '&',
    '%',
    '$',
    '{',
    '}',
    '?',
    '#',
    ';',
    ' ',
    '\t',
    '\n',
    '\r',
    '\0',
    '\u{1}',
    '\u{1B}',
    '\u{7F}',
    '\u{85}',
    'é',
    'ß',
    'Ⱥ',
    '\u{301}',
    '\u{20DD}',
    'א',
    'ع',
    '\u{200E}',
    '\u{200F}',
    '\u{202A}',
    '\u{202B}',
    '\u{202C}',
    '\u{202D}',
    '\u{202E}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{A0}',
    '\u{FEFF}',
    '\u{200B}',
    '\u{200D}',
    '\u{2028}',
    '\u{2029}',
    '\u{FFFD}',
    '\u{FFFF}',
    '中',
    '😀',
    '🕴',
    '\u{1F3FB}',
    '𝕏',
    '\u{10FFFF}',
];

/// Where [`fuzz_char`]'s second class draws the other half from: controls, two-byte UTF-8
/// (Latin-1 and more), combining marks, Hebrew and Arabic, CJK, emoji.
const AWKWARD_RANGES: &[RangeInclusive<char>] = &[
    '\0'..='\u{1F}',
    '\u{80}'..='\u{7FF}',
    '\u{300}'..='\u{36F}',
    '\u{590}'..='\u{6FF}',
    '\u{4E00}'..='\u{9FFF}',
    '\u{1F300}'..='\u{1FAFF}',
];

/// Every Unicode scalar value, in ranges that shrinking does not cross: controls, printable
/// ASCII, the rest of the BMP below the surrogates (shrinks towards `¡`), and above them.
const ALL_CHARS: &[RangeInclusive<char>] = &[
    '\0'..='\u{1F}',
    ' '..='~',
    '\u{7F}'..='\u{D7FF}',
    '\u{E000}'..='\u{10FFFF}',
];

/// Mostly lower-case letters, then digits, then any printable ASCII.
const PLAIN_PREFERRED: &[RangeInclusive<char>] = &['a'..='z', 'a'..='z', 'a'..='z', '0'..='9'];
const PRINTABLE_ASCII: &[RangeInclusive<char>] = &[' '..='~'];

/// Whole strings that mean something elsewhere: JSON literals, numbers, injections, paths,
/// templates.
const AWKWARD_STRINGS: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1e309",
    "NaN",
    "<script>alert(1)</script>",
    "'; DROP TABLE builds; --",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "%s%n%x",
    "$(touch /tmp/pwned)",
    "C:\\Windows\\",
    "a\u{0}b",
    "\u{202E}txt.exe",
    "e\u{301}\u{301}\u{301}",
    "👨‍👩‍👧‍👦",
    "🇺🇦",
];

/// Boundary lengths for `push_data.tag` (Docker allows 128 characters).
pub const TAG_LENGTHS: &[usize] = &[1, 127, 128, 129, 255, 256];
/// Boundary lengths for `repository.description` (Docker Hub's short description: 100).
pub const DESCRIPTION_LENGTHS: &[usize] = &[1, 99, 100, 101, 255, 256];
/// Boundary lengths for user names (`pusher`, `owner`; Docker Hub allows 4 to 30).
pub const USER_LENGTHS: &[usize] = &[1, 3, 4, 30, 31, 255, 256];
/// Boundary lengths for long texts (`full_description`, `dockerfile`; Docker Hub's README limit
/// is 25 000 characters).
pub const LONG_LENGTHS: &[usize] = &[255, 256, 4096, 25_000, 25_001];

/// Manifest media types real deliveries carried.
pub const MEDIA_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// The base URL of payload URLs when nothing better is known.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:5555";

/// One character: two times in three printable ASCII (mostly lower-case letters), otherwise an
/// awkward one: half of those from a list (ASCII with a meaning, NUL and other controls,
/// combining marks, right-to-left marks and overrides, invisible characters, line separators,
/// emoji), a quarter from ranges of two-byte, combining, right-to-left, CJK and emoji
/// characters, a quarter from all of Unicode. Shrinks towards `a`; a character that must stay
/// non-ASCII shrinks towards `¡`.
pub fn fuzz_char() -> BoxedStrategy<char> {
    // Two classes, not one per kind of character: a union builds a lazy tree for every
    // alternative, which made generation several times slower. Shrinking moves to the first
    // class, so a character that must stay awkward ends up as simple as its range allows
    // (a non-ASCII one near `¡`).
    let plain = CharStrategy::new_borrowed(&[], PLAIN_PREFERRED, PRINTABLE_ASCII);
    let awkward = CharStrategy::new_borrowed(AWKWARD_CHARS, AWKWARD_RANGES, ALL_CHARS);
    prop_oneof![2 => plain, 1 => awkward].boxed()
}

/// A string of up to twelve [`fuzz_char`]s or one of a list of awkward whole strings, sometimes
/// padded with one repeated character to exactly one of `lengths` characters (Unicode scalar
/// values, not bytes: 255 × `é` is 255 characters). The empty string is included.
///
/// Shrinking drops characters, simplifies them, and moves the padding to the shortest boundary
/// length that still fails.
pub fn text(lengths: &'static [usize]) -> BoxedStrategy<String> {
    let core = prop_oneof![
        6 => vec(fuzz_char(), 0..=12).prop_map(String::from_iter),
        1 => select(AWKWARD_STRINGS).prop_map(str::to_owned),
    ];
    let length = prop_oneof![6 => Just(0), 1 => select(lengths)];
    // The length shrinks first: padding is what makes a payload big, and every attempt sends it.
    (length, core, fuzz_char())
        .prop_map(|(length, mut text, pad)| {
            let missing = length.saturating_sub(text.chars().count());
            text.extend(std::iter::repeat_n(pad, missing));
            text
        })
        .boxed()
}

const NAMESPACE_CHARS: &[char] = &['a', 'b', 'c', 'x', 'y', 'z', '0', '1', '9', '_', '-'];
const NAME_FIRST_CHARS: &[char] = &['a', 'b', 'c', 'x', 'y', 'z', '0', '1', '9'];
const NAME_CHARS: &[char] = &['a', 'b', 'c', 'x', 'y', 'z', '0', '1', '9', '.', '_', '-'];

/// Up to `max` characters of `alphabet`, sometimes padded with one of them to exactly `max`.
fn padded(
    alphabet: &'static [char],
    min: usize,
    short: usize,
    max: usize,
) -> BoxedStrategy<String> {
    // Characters from a short list, and padding rather than a regex such as `[a-z0-9._-]{254}`:
    // a regex builds a tree per character, which made a payload ten times slower to generate.
    let chars = vec(select(alphabet), min..=short);
    (
        chars,
        prop_oneof![4 => Just(false), 1 => Just(true)],
        select(alphabet),
    )
        .prop_map(move |(mut chars, pad, filler)| {
            if pad {
                chars.resize(max, filler);
            }
            String::from_iter(chars)
        })
        .boxed()
}

/// A namespace: `library` (official images) or 2 to 30 characters of `[a-z0-9_-]`.
pub fn namespace() -> BoxedStrategy<String> {
    prop_oneof![
        5 => padded(NAMESPACE_CHARS, 2, 8, 30),
        1 => Just(LIBRARY.to_owned()),
    ]
    .boxed()
}

/// A repository name: 1 to 255 characters of `[a-z0-9._-]`, starting with a letter or digit.
pub fn repository_name() -> BoxedStrategy<String> {
    (select(NAME_FIRST_CHARS), padded(NAME_CHARS, 0, 15, 254))
        .prop_map(|(first, rest)| format!("{first}{rest}"))
        .boxed()
}

/// A valid repository name, `library/...` among them.
pub fn repo_name() -> BoxedStrategy<RepoName> {
    (namespace(), repository_name())
        .prop_map(|(namespace, name)| RepoName { namespace, name })
        .boxed()
}

/// A hook id: 32 characters of `[0-9a-j]`. It never shrinks: it is an identifier, not data.
pub fn hook_id() -> BoxedStrategy<String> {
    const ALPHABET: &[u8; 20] = b"0123456789abcdefghij";
    any::<u128>()
        .no_shrink()
        .prop_map(|mut n| {
            let mut id = [b'0'; 32];
            for symbol in id.iter_mut().rev() {
                *symbol = ALPHABET[(n % 20) as usize];
                n /= 20;
            }
            String::from_utf8_lossy(&id).into_owned()
        })
        .boxed()
}

/// Seconds since the Unix epoch: mostly 2014–2030, sometimes 0, 1, or either side of the
/// 32-bit limits (2038 and 2106).
pub fn whole_seconds() -> BoxedStrategy<i64> {
    prop_oneof![
        6 => 1_400_000_000_i64..=1_900_000_000,
        1 => select(&[0_i64, 1, 2_147_483_647, 2_147_483_648, 4_294_967_295, 4_294_967_296][..]),
    ]
    .boxed()
}

/// A time as `format` writes it: floats for `legacy` (whole seconds, sometimes with
/// microseconds as Python's `time.time()` gives them), integers for `current` and `observed`.
pub fn seconds(format: PayloadFormat) -> BoxedStrategy<Seconds> {
    match format {
        PayloadFormat::Legacy => prop_oneof![
            3 => whole_seconds().prop_map(|s| Seconds::Float(s as f64)),
            // Plausible instants only: serde_json (without its `float_roundtrip` feature) can
            // read a float with 17 significant digits, such as 1.8359999999999999, one unit in
            // the last place off, so a tiny fractional time would not survive a round trip.
            1 => (1_400_000_000_i64..=1_900_000_000, 0_u32..1_000_000)
                .prop_map(|(s, us)| Seconds::Float(s as f64 + f64::from(us) / 1e6)),
        ]
        .boxed(),
        PayloadFormat::Current | PayloadFormat::Observed => {
            whole_seconds().prop_map(Seconds::Integer).boxed()
        }
    }
}

/// A star or comment count: usually small, sometimes in the millions.
pub fn count() -> BoxedStrategy<u64> {
    prop_oneof![4 => 0_u64..=10, 1 => 0_u64..=10_000_000].boxed()
}

/// An image id: 64 hex digits (shrinks towards zeros).
pub fn image_id() -> BoxedStrategy<String> {
    // Two numbers rather than the regex `[0-9a-f]{64}`: generation is many times faster, which
    // matters for 200 of them per payload.
    (any::<u128>(), any::<u128>())
        .prop_map(|(high, low)| format!("{high:032x}{low:032x}"))
        .boxed()
}

/// `push_data.images` as `format` has it: a list of ids, empty or up to 200 long (`legacy`),
/// absent (`current`), always empty (`observed`).
pub fn images(format: PayloadFormat) -> BoxedStrategy<Option<Vec<String>>> {
    match format {
        PayloadFormat::Legacy => prop_oneof![
            3 => vec(image_id(), 0..=3),
            1 => vec(image_id(), 0..=200),
        ]
        .prop_map(Some)
        .boxed(),
        PayloadFormat::Current => Just(None).boxed(),
        PayloadFormat::Observed => Just(Some(Vec::new())).boxed(),
    }
}

/// Everything in a payload that does not depend on the repository's name.
#[derive(Clone, Debug)]
struct Details {
    pushed_at: Seconds,
    pusher: String,
    tag: String,
    images: Option<Vec<String>>,
    media_type: Option<String>,
    date_created: Seconds,
    description: Option<String>,
    full_description: Option<String>,
    dockerfile: Option<String>,
    is_private: bool,
    is_trusted: bool,
    owner: Option<String>,
    star_count: u64,
    comment_count: Option<Count>,
}

fn details(format: PayloadFormat) -> BoxedStrategy<Details> {
    let (dockerfile, comment_count, media_type) = match format {
        PayloadFormat::Legacy => (
            text(LONG_LENGTHS).prop_map(Some).boxed(),
            count()
                .prop_map(|c| Some(Count::Text(c.to_string())))
                .boxed(),
            Just(None).boxed(),
        ),
        PayloadFormat::Current => (
            text(LONG_LENGTHS).prop_map(Some).boxed(),
            count().prop_map(|c| Some(Count::Number(c))).boxed(),
            Just(None).boxed(),
        ),
        PayloadFormat::Observed => (
            Just(None).boxed(),
            Just(None).boxed(),
            option::weighted(0.9, select(MEDIA_TYPES).prop_map(str::to_owned)).boxed(),
        ),
    };
    // Tuples shrink their elements in order: the bulky ones come first, so that the many later
    // attempts send small payloads.
    let bulky = (
        images(format),
        // Real payloads have carried `null` for both descriptions.
        option::weighted(0.9, text(LONG_LENGTHS)),
        dockerfile,
        option::weighted(0.9, text(DESCRIPTION_LENGTHS)),
        text(TAG_LENGTHS),
        text(USER_LENGTHS),
        // Usually the owner is the namespace; sometimes someone else, with an awkward name.
        option::weighted(0.2, text(USER_LENGTHS)),
    );
    let small = (
        seconds(format),
        seconds(format),
        media_type,
        any::<bool>(),
        any::<bool>(),
        count(),
        comment_count,
    );
    (bulky, small)
        .prop_map(
            |(
                (images, full_description, dockerfile, description, tag, pusher, owner),
                (
                    pushed_at,
                    date_created,
                    media_type,
                    is_private,
                    is_trusted,
                    star_count,
                    comment_count,
                ),
            )| Details {
                pushed_at,
                pusher,
                tag,
                images,
                media_type,
                date_created,
                description,
                full_description,
                dockerfile,
                is_private,
                is_trusted,
                owner,
                star_count,
                comment_count,
            },
        )
        .boxed()
}

/// A payload in `format` whose `callback_url` and `repo_url` start with `base_url` (no trailing
/// slash), as hubmock would send it with that public URL: a valid repository name
/// (`library/...` among them, with `repo_name` just the name), and edge cases in every free
/// text field.
pub fn payload(format: PayloadFormat, base_url: String) -> BoxedStrategy<Payload> {
    (details(format), repo_name(), hook_id())
        .prop_map(move |(d, repo, hook_id)| Payload {
            callback_url: callback_url(&base_url, &repo, &hook_id),
            push_data: PushData {
                images: d.images.into(),
                pushed_at: d.pushed_at,
                pusher: d.pusher,
                tag: Some(d.tag),
                media_type: d.media_type,
            },
            repository: PayloadRepository {
                comment_count: d.comment_count,
                date_created: d.date_created,
                description: d.description,
                dockerfile: d.dockerfile,
                full_description: d.full_description,
                is_official: repo.is_library(),
                is_private: d.is_private,
                is_trusted: d.is_trusted,
                owner: d.owner.unwrap_or_else(|| repo.namespace.clone()),
                repo_name: repo.repo_name(),
                repo_url: format!("{base_url}{}", repo.hub_path()),
                star_count: d.star_count,
                status: "Active".to_owned(),
                name: repo.name,
                namespace: repo.namespace,
            },
        })
        .boxed()
}

/// A payload in any of the three formats, with the format it was made in.
pub fn any_payload(base_url: String) -> BoxedStrategy<(PayloadFormat, Payload)> {
    let one =
        |format: PayloadFormat| payload(format, base_url.clone()).prop_map(move |p| (format, p));
    prop_oneof![
        one(PayloadFormat::Legacy),
        one(PayloadFormat::Current),
        one(PayloadFormat::Observed),
    ]
    .boxed()
}

/// Payloads in `format`, or in every format when `None`, tagged with their format.
pub fn payloads(
    format: Option<PayloadFormat>,
    base_url: String,
) -> BoxedStrategy<(PayloadFormat, Payload)> {
    match format {
        Some(format) => payload(format, base_url)
            .prop_map(move |p| (format, p))
            .boxed(),
        None => any_payload(base_url),
    }
}
