//! A fake NuGet v2 feed, built from NuGet's documented push protocol ("Push and Delete",
//! learn.microsoft.com/nuget/api/package-publish-resource, which v2 feeds such as Chocolatey's
//! share): `PUT /api/v2/package` with the key in `X-NuGet-ApiKey` and the package as the
//! first file of a `multipart/form-data` body; 201 when stored, 403 for a wrong key, 400 for a
//! body that is not a package, 409 when the id and version exist. `GET
//! /api/v2/package/{id}/{version}` downloads a stored package (ids compare case-insensitively).
//! With `moderated`, downloads answer 404 while a push of an existing version still gets 409,
//! as a feed holding packages for review does.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::wire::{Head, read_body, read_head};

/// One push as the feed saw it.
#[derive(Debug, Clone)]
pub struct Push {
    /// The answer's status.
    pub status: u16,
    /// The form field's name.
    pub field: String,
    /// The file name sent.
    pub file_name: String,
}

#[derive(Default)]
struct State {
    packages: BTreeMap<(String, String), Vec<u8>>,
    pushes: Vec<Push>,
    moderated: bool,
}

/// A running feed.
pub struct NugetFeed {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl NugetFeed {
    /// Starts a feed that takes `key`.
    pub fn start(key: &str) -> NugetFeed {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let (shared, key) = (state.clone(), key.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, key) = (shared.clone(), key.clone());
                std::thread::spawn(move || serve(stream, &state, &key));
            }
        });
        NugetFeed { url, state }
    }

    /// Stores `bytes` as `id` `version`, as if pushed earlier.
    pub fn seed(&self, id: &str, version: &str, bytes: &[u8]) {
        self.state.lock().unwrap().packages.insert(
            (id.to_ascii_lowercase(), version.to_owned()),
            bytes.to_vec(),
        );
    }

    /// Hides downloads (packages under review).
    pub fn moderate(&self) {
        self.state.lock().unwrap().moderated = true;
    }

    /// The stored package, if any.
    pub fn package(&self, id: &str, version: &str) -> Option<Vec<u8>> {
        self.state
            .lock()
            .unwrap()
            .packages
            .get(&(id.to_ascii_lowercase(), version.to_owned()))
            .cloned()
    }

    /// Every push so far.
    pub fn pushes(&self) -> Vec<Push> {
        self.state.lock().unwrap().pushes.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, key: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some(head) = read_head(&mut reader) {
        let Some(body) = read_body(&mut reader, &head, None) else {
            return;
        };
        let (status, bytes) = answer(&head, &body, state, key);
        let reason = match status {
            200 => "OK",
            201 => "Created",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            _ => "Status",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
            bytes.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn answer(head: &Head, body: &[u8], state: &Mutex<State>, key: &str) -> (u16, Vec<u8>) {
    let route = head.route().to_owned();
    if head.method == "GET"
        && let Some(rest) = route.strip_prefix("/api/v2/package/")
        && let Some((id, version)) = rest.split_once('/')
    {
        let state = state.lock().unwrap();
        if state.moderated {
            return (404, b"Not Found".to_vec());
        }
        return match state
            .packages
            .get(&(id.to_ascii_lowercase(), version.to_owned()))
        {
            Some(bytes) => (200, bytes.clone()),
            None => (404, b"Not Found".to_vec()),
        };
    }
    if head.method != "PUT" || route != "/api/v2/package" {
        return (404, b"Not Found".to_vec());
    }
    let push = |status: u16, field: String, file_name: String, message: &str| {
        state.lock().unwrap().pushes.push(Push {
            status,
            field,
            file_name,
        });
        (status, message.as_bytes().to_vec())
    };
    if head.header("x-nuget-apikey").as_deref() != Some(key) {
        return push(
            403,
            String::new(),
            String::new(),
            "The specified API key is invalid",
        );
    }
    let Some((field, file_name, package)) = first_file(head, body) else {
        return push(
            400,
            String::new(),
            String::new(),
            "not a multipart package upload",
        );
    };
    let Some((id, version)) = identity(&package) else {
        return push(400, field, file_name, "the package has no readable nuspec");
    };
    let key = (id.to_ascii_lowercase(), version);
    if state.lock().unwrap().packages.contains_key(&key) {
        return push(
            409,
            field,
            file_name,
            "A package with this id and version already exists",
        );
    }
    state.lock().unwrap().packages.insert(key, package);
    push(201, field, file_name, "Created")
}

/// The first part of a `multipart/form-data` body: its field name, file name and bytes.
fn first_file(head: &Head, body: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let content_type = head.header("content-type")?;
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}\r\n");
    let start = find(body, delimiter.as_bytes())? + delimiter.len();
    let headers_end = start + find(&body[start..], b"\r\n\r\n")?;
    let headers = String::from_utf8_lossy(&body[start..headers_end]).into_owned();
    let data_start = headers_end + 4;
    let end = data_start + find(&body[data_start..], format!("\r\n--{boundary}").as_bytes())?;
    let disposition = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let value_of = |name: &str| {
        disposition
            .split(';')
            .find_map(|p| p.trim().strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_owned())
    };
    Some((
        value_of("name")?,
        value_of("filename").unwrap_or_default(),
        body[data_start..end].to_vec(),
    ))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The id and version of the `.nuspec` at the package's root.
fn identity(package: &[u8]) -> Option<(String, String)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).ok()?;
    let name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with(".nuspec") && !n.contains('/'))?
        .into_owned();
    let mut text = String::new();
    zip.by_name(&name).ok()?.read_to_string(&mut text).ok()?;
    let element = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{tag}>"))?;
        Some(text[start..end].to_owned())
    };
    Some((element("id")?, element("version")?))
}
