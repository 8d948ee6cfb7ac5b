//! A real SMTP server for the email tests: aiosmtpd (Debian's `python3-aiosmtpd`, which
//! `scripts/test.sh` installs) on a free loopback port, storing what it accepts in a
//! Maildir, plain or with STARTTLS or SMTPS under a certificate from a throwaway CA.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// How the server protects connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Plain,
    StartTls,
    Tls,
}

/// A running aiosmtpd, killed and cleaned up on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    /// The CA that signed the server's certificate (PEM), for TLS modes.
    pub ca_pem: Option<Vec<u8>>,
}

/// A CA and a certificate for 127.0.0.1 signed by it: (CA PEM, leaf PEM, leaf key PEM).
fn certificates() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "monitoring-service test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpServer {
    /// Starts the server and waits (with a deadline) until it accepts connections.
    pub fn start(security: Security) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "monitoring-smtp-{}-{port}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let python =
            std::env::var("TEST_SMTP_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_owned());
        let mut command = Command::new(python);
        command.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        let mut ca_pem = None;
        if security != Security::Plain {
            let (ca, cert, key) = certificates();
            let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
            std::fs::write(&cert_file, cert).unwrap();
            std::fs::write(&key_file, key).unwrap();
            let (cert_flag, key_flag) = match security {
                Security::StartTls => ("--tlscert", "--tlskey"),
                _ => ("--smtpscert", "--smtpskey"),
            };
            command
                .arg(cert_flag)
                .arg(&cert_file)
                .arg(key_flag)
                .arg(&key_file);
            ca_pem = Some(ca.into_bytes());
        }
        let maildir = dir.join("mail");
        command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap());
        let child = command
            .spawn()
            .expect("aiosmtpd runs (scripts/test.sh installs python3-aiosmtpd)");
        let server = Self {
            child,
            port,
            dir,
            ca_pem,
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening: {}",
                std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The raw messages delivered so far.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.join("mail").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of a header in a raw message (first occurrence, unfolded).
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The body of a raw message (after the first blank line), with CRLFs as LFs.
pub fn body(message: &str) -> String {
    let normalized = message.replace("\r\n", "\n");
    normalized
        .split_once("\n\n")
        .map(|(_, body)| body.trim_end().to_owned())
        .unwrap_or_default()
}
