//! A unit's log file: every line masked, the last lines kept for failure reports.

use super::*;

/// A stage's log file plus the last lines, for failure reports. Every line is masked first.
pub(super) struct Log {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    tail: Mutex<VecDeque<String>>,
    masker: Arc<Masker>,
}

impl Log {
    /// Opens the log at `path`: emptied, or kept and appended to (`append`).
    pub(super) fn open(path: &Path, masker: Arc<Masker>, append: bool) -> std::io::Result<Log> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)?;
        Ok(Log {
            file: Mutex::new(std::io::BufWriter::new(file)),
            tail: Mutex::new(VecDeque::with_capacity(TAIL_LINES)),
            masker,
        })
    }

    /// Empties the log: a new build's log replaces the old one.
    pub(super) fn restart(&self) {
        if let Ok(mut file) = self.file.lock() {
            let _ = file.flush();
            let _ = file.get_ref().set_len(0);
        }
    }

    /// Appends a line; returns it masked.
    pub(super) fn line(&self, text: &str) -> String {
        let masked = self.masker.mask(text).into_owned();
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{masked}");
            let _ = file.flush();
        }
        if !masked.starts_with("# shipit:")
            && let Ok(mut tail) = self.tail.lock()
        {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(masked.clone());
        }
        masked
    }

    pub(super) fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}
