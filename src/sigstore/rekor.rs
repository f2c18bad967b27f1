//! Rekor, the transparency log: the `hashedrekord` entry a signature is recorded as, and the
//! checks of a recorded entry (its signed entry timestamp, its RFC 6962 inclusion proof and the
//! log's signed checkpoint over the same root).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::bundle::TlogEntry;
use super::keys::Hash;
use super::trust::{Log, TrustedRoot};

/// The canonical JSON (RFC 8785: keys sorted, no spaces) of a `hashedrekord` 0.0.1 entry for
/// `signature` over a file whose SHA-256 is `sha256`, by the certificate `cert_pem`.
pub fn hashedrekord(sha256: &[u8], signature: &[u8], cert_pem: &str) -> String {
    // Every value is base64 or hex: no character JSON escapes.
    format!(
        "{{\"apiVersion\":\"0.0.1\",\"kind\":\"hashedrekord\",\"spec\":{{\"data\":{{\"hash\":{{\"algorithm\":\"sha256\",\"value\":\"{}\"}}}},\"signature\":{{\"content\":\"{}\",\"publicKey\":{{\"content\":\"{}\"}}}}}}}}",
        hex::encode(sha256),
        STANDARD.encode(signature),
        STANDARD.encode(cert_pem.as_bytes()),
    )
}

/// Checks a `dsse` 0.0.1 entry's body records this envelope: its payload's SHA-256, and its
/// one signature by this certificate.
pub fn dsse_agrees(
    body: &[u8],
    payload: &[u8],
    signature: &[u8],
    cert: &[u8],
) -> Result<(), String> {
    let inconsistent = || "its log entry records another envelope or certificate".to_owned();
    let body: serde_json::Value = serde_json::from_slice(body).map_err(|_| inconsistent())?;
    let spec = &body["spec"];
    let signatures = spec["signatures"].as_array().ok_or_else(inconsistent)?;
    let [only] = signatures.as_slice() else {
        return Err(inconsistent());
    };
    let verifier = only["verifier"]
        .as_str()
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|p| String::from_utf8(p).ok())
        .and_then(|p| super::x509::pem_der(&p));
    let ok = body["kind"] == "dsse"
        && spec["payloadHash"]["algorithm"] == "sha256"
        && spec["payloadHash"]["value"].as_str()
            == Some(hex::encode(Sha256::digest(payload)).as_str())
        && only["signature"]
            .as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .as_deref()
            == Some(signature)
        && verifier.as_deref() == Some(cert);
    ok.then_some(()).ok_or_else(inconsistent)
}

/// Checks a bundle's entry against the root's logs: the log is known and was in use at the
/// entry's time, the inclusion proof reaches the checkpoint's root, the checkpoint and the
/// signed entry timestamp are the log's signatures.
pub fn verify_entry(entry: &TlogEntry, root: &TrustedRoot) -> Result<(), String> {
    let log = root
        .logs
        .iter()
        .find(|l| l.id.as_slice() == entry.log_id.key_id.0.as_slice())
        .ok_or("its log entry is from a log the trusted root does not know")?;
    if !log
        .valid
        .contains(super::trust::at(entry.integrated_time.0))
    {
        return Err("its log's key was not in use when the entry was made".into());
    }
    let proof = &entry.inclusion_proof;
    let root_hash = inclusion_root(
        &leaf_hash(&entry.canonicalized_body.0),
        proof.log_index.0,
        proof.tree_size.0,
        &proof.hashes.iter().map(|h| h.0.clone()).collect::<Vec<_>>(),
    )?;
    if root_hash != proof.root_hash.0 {
        return Err("its inclusion proof does not reach the tree's root".into());
    }
    checkpoint(
        &proof.checkpoint.envelope,
        log,
        proof.tree_size.0,
        &root_hash,
    )?;
    let promise = entry
        .inclusion_promise
        .as_ref()
        .ok_or("its log entry has no signed entry timestamp")?;
    let canonical = format!(
        "{{\"body\":\"{}\",\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":{}}}",
        STANDARD.encode(&entry.canonicalized_body.0),
        entry.integrated_time.0,
        hex::encode(log.id),
        entry.log_index.0
    );
    log.key
        .verify(
            Hash::Sha256,
            canonical.as_bytes(),
            &promise.signed_entry_timestamp.0,
        )
        .map_err(|e| format!("its signed entry timestamp: {e}"))
}

/// RFC 6962's leaf hash.
pub fn leaf_hash(leaf: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().to_vec()
}

/// RFC 6962's interior node hash.
pub fn node_hash(left: &[u8], right: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().to_vec()
}

/// The root an inclusion proof of the leaf at `index` in a tree of `size` leads to.
pub fn inclusion_root(
    leaf: &[u8],
    index: u64,
    size: u64,
    hashes: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    if index >= size {
        return Err("its inclusion proof names a leaf past the tree's end".into());
    }
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    if hashes.len() != inner + border {
        return Err(format!(
            "its inclusion proof has {} hashes, not the {} a tree of {size} needs",
            hashes.len(),
            inner + border
        ));
    }
    let mut seed = leaf.to_vec();
    for (i, h) in hashes[..inner].iter().enumerate() {
        seed = match (index >> i) & 1 {
            0 => node_hash(&seed, h),
            _ => node_hash(h, &seed),
        };
    }
    for h in &hashes[inner..] {
        seed = node_hash(h, &seed);
    }
    Ok(seed)
}

/// Checks a signed note: `origin\nsize\nbase64(root)\n...` then a blank line and
/// `— NAME base64(keyhint(4) || signature)` lines, one by `log`, for this size and root.
fn checkpoint(text: &str, log: &Log, size: u64, root: &[u8]) -> Result<(), String> {
    let (note, signatures) = text
        .split_once("\n\n")
        .ok_or("its checkpoint is not a signed note")?;
    let note = format!("{note}\n");
    let mut lines = note.lines();
    let (_origin, found_size, found_root) = (lines.next(), lines.next(), lines.next());
    if found_size.and_then(|s| s.parse::<u64>().ok()) != Some(size)
        || found_root.and_then(|r| STANDARD.decode(r).ok()).as_deref() != Some(root)
    {
        return Err("its checkpoint is for another tree than its inclusion proof".into());
    }
    for line in signatures.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((_name, signature)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(bytes) = STANDARD.decode(signature) else {
            continue;
        };
        if bytes.len() > 4 && bytes[..4] == log.id[..4] {
            return log
                .key
                .verify(Hash::Sha256, note.as_bytes(), &bytes[4..])
                .map_err(|e| format!("its checkpoint: {e}"));
        }
    }
    Err("its checkpoint carries no signature by its log".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root of a tree of leaf hashes, as RFC 6962 defines it.
    fn tree_root(leaves: &[Vec<u8>]) -> Vec<u8> {
        if leaves.len() == 1 {
            return leaves[0].clone();
        }
        let split = leaves.len().next_power_of_two() / 2;
        node_hash(&tree_root(&leaves[..split]), &tree_root(&leaves[split..]))
    }

    /// An inclusion proof, as RFC 6962 defines it.
    fn path(index: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
        if leaves.len() <= 1 {
            return Vec::new();
        }
        let split = leaves.len().next_power_of_two() / 2;
        if index < split {
            let mut p = path(index, &leaves[..split]);
            p.push(tree_root(&leaves[split..]));
            p
        } else {
            let mut p = path(index - split, &leaves[split..]);
            p.push(tree_root(&leaves[..split]));
            p
        }
    }

    #[test]
    fn every_leaf_of_trees_of_every_size_up_to_9_proves_its_root() {
        for size in 1..=9usize {
            let leaves: Vec<Vec<u8>> = (0..size).map(|i| leaf_hash(&[i as u8])).collect();
            let root = tree_root(&leaves);
            for index in 0..size {
                let proof = path(index, &leaves);
                let got =
                    inclusion_root(&leaves[index], index as u64, size as u64, &proof).unwrap();
                assert_eq!(got, root, "size {size} index {index}");
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = leaf_hash(first);
                    let got =
                        inclusion_root(&leaves[index], index as u64, size as u64, &bad).unwrap();
                    assert_ne!(got, root);
                }
            }
        }
    }
}
