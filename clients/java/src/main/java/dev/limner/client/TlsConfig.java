package dev.limner.client;

import io.grpc.ChannelCredentials;
import io.grpc.TlsChannelCredentials;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * TLS with PEM files: the CA that signed the server's certificate (none: the system's CAs)
 * and, for a server that requires client certificates (mTLS), this client's certificate and
 * unencrypted PKCS#8 key.
 *
 * <pre>{@code
 * TlsConfig tls = TlsConfig.builder()
 *     .caFile(Path.of("ca.pem"))
 *     .clientCertificate(Path.of("client.pem"), Path.of("client.key"))
 *     .build();
 * }</pre>
 */
public final class TlsConfig {
  private static final Pattern PEM_KEY =
      Pattern.compile(
          "-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");

  private final Path caFile;
  private final Path certFile;
  private final Path keyFile;
  private final String serverName;

  private TlsConfig(Builder b) {
    this.caFile = b.caFile;
    this.certFile = b.certFile;
    this.keyFile = b.keyFile;
    this.serverName = b.serverName;
  }

  public static Builder builder() {
    return new Builder();
  }

  public Path caFile() {
    return caFile;
  }

  public Path certFile() {
    return certFile;
  }

  public Path keyFile() {
    return keyFile;
  }

  /** The name checked against the server's certificate; null means the target's host. */
  public String serverName() {
    return serverName;
  }

  /**
   * Reads and checks the files and returns gRPC channel credentials (TLS 1.2 or later).
   *
   * @throws IllegalArgumentException when a file is missing, holds no PEM certificate or key,
   *     or only one of the client certificate and key is set
   */
  public ChannelCredentials credentials() {
    TlsChannelCredentials.Builder builder = TlsChannelCredentials.newBuilder();
    if (caFile != null) {
      byte[] pem = read(caFile, "TLS CA file");
      if (certificateCount(pem) == 0) {
        throw new IllegalArgumentException(
            "limner: TLS CA file " + caFile + " holds no PEM certificate");
      }
      try {
        builder.trustManager(new ByteArrayInputStream(pem));
      } catch (IOException e) {
        throw new IllegalArgumentException("limner: TLS CA file " + caFile + ": " + e, e);
      }
    }
    if ((certFile == null) != (keyFile == null)) {
      throw new IllegalArgumentException(
          "limner: TLS client certificate and key go together: set both certFile and keyFile,"
              + " or neither");
    }
    if (certFile != null) {
      String pair = "limner: TLS client certificate " + certFile + " with key " + keyFile;
      byte[] cert = read(certFile, "TLS client certificate");
      byte[] key = read(keyFile, "TLS client key");
      if (certificateCount(cert) == 0) {
        throw new IllegalArgumentException(pair + ": no PEM certificate in " + certFile);
      }
      checkKey(key, pair);
      try {
        builder.keyManager(new ByteArrayInputStream(cert), new ByteArrayInputStream(key));
      } catch (IOException e) {
        throw new IllegalArgumentException(pair + ": " + e.getMessage(), e);
      }
    }
    return builder.build();
  }

  private static byte[] read(Path path, String what) {
    try {
      return Files.readAllBytes(path);
    } catch (IOException e) {
      throw new IllegalArgumentException("limner: " + what + " " + path + ": " + e, e);
    }
  }

  private static int certificateCount(byte[] pem) {
    try {
      return CertificateFactory.getInstance("X.509")
          .generateCertificates(new ByteArrayInputStream(pem))
          .size();
    } catch (CertificateException e) {
      return 0;
    }
  }

  private static void checkKey(byte[] pem, String pair) {
    Matcher m = PEM_KEY.matcher(new String(pem, StandardCharsets.US_ASCII));
    if (!m.find()) {
      throw new IllegalArgumentException(
          pair + ": the key is not an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY)");
    }
    byte[] der = Base64.getMimeDecoder().decode(m.group(1));
    for (String algorithm : new String[] {"EC", "RSA", "Ed25519"}) {
      try {
        KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
        return;
      } catch (GeneralSecurityException e) {
        // try the next algorithm
      }
    }
    throw new IllegalArgumentException(pair + ": the key is not an EC, RSA or Ed25519 key");
  }

  /** Builds a {@link TlsConfig}. */
  public static final class Builder {
    private Path caFile;
    private Path certFile;
    private Path keyFile;
    private String serverName;

    private Builder() {}

    /** PEM CA certificate(s) that signed the server's certificate; null trusts the system's. */
    public Builder caFile(Path caFile) {
      this.caFile = caFile;
      return this;
    }

    /** This client's PEM certificate and unencrypted PKCS#8 PEM key, for mTLS. */
    public Builder clientCertificate(Path certFile, Path keyFile) {
      this.certFile = certFile;
      this.keyFile = keyFile;
      return this;
    }

    /** The name to check the server's certificate against, instead of the target's host. */
    public Builder serverName(String serverName) {
      this.serverName = serverName == null || serverName.isEmpty() ? null : serverName;
      return this;
    }

    public TlsConfig build() {
      return new TlsConfig(this);
    }
  }
}
