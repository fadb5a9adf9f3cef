package dev.limner.client;

import static dev.limner.client.Servers.assertOneToN;
import static dev.limner.client.Servers.drain;
import static dev.limner.client.Servers.kind;
import static dev.limner.client.Servers.request;
import static dev.limner.client.Servers.sequences;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.limner.v1.JobEvent;
import dev.limner.v1.ListModelsRequest;
import io.grpc.InsecureChannelCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS and mTLS against real Limner servers. tests/contract starts two besides the plaintext
 * one, with certificates it makes for the run, and passes them in: LIMNER_TEST_TLS_ADDR (a
 * server with a certificate signed by the test CA), LIMNER_TEST_MTLS_ADDR (the same, and it
 * requires client certificates signed by that CA), LIMNER_TEST_CA_CERT, LIMNER_TEST_CLIENT_CERT
 * and LIMNER_TEST_CLIENT_KEY. Without them the tests that need a server skip.
 */
@Timeout(60)
class TlsTest {
  record Env(String addr, String mtlsAddr, Path ca, Path cert, Path key) {}

  static Env env() {
    String addr = System.getenv("LIMNER_TEST_TLS_ADDR");
    String mtlsAddr = System.getenv("LIMNER_TEST_MTLS_ADDR");
    String ca = System.getenv("LIMNER_TEST_CA_CERT");
    String cert = System.getenv("LIMNER_TEST_CLIENT_CERT");
    String key = System.getenv("LIMNER_TEST_CLIENT_KEY");
    assumeTrue(
        addr != null && mtlsAddr != null && ca != null && cert != null && key != null,
        "LIMNER_TEST_TLS_ADDR, LIMNER_TEST_MTLS_ADDR, LIMNER_TEST_CA_CERT, LIMNER_TEST_CLIENT_CERT"
            + " and LIMNER_TEST_CLIENT_KEY are not all set: .venv/bin/pytest tests/contract starts"
            + " TLS servers and sets them");
    return new Env(addr, mtlsAddr, Path.of(ca), Path.of(cert), Path.of(key));
  }

  static void listModels(LimnerClient client) {
    client.models().withDeadlineAfter(10, TimeUnit.SECONDS).listModels(ListModelsRequest.getDefaultInstance());
  }

  static void assertRefused(String addr, LimnerOptions options, String why) {
    try (LimnerClient client = LimnerClient.connect(addr, options)) {
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> listModels(client), why);
      assertEquals(Status.Code.UNAVAILABLE, error.getStatus().getCode(), why + ": " + error);
    }
  }

  static LimnerOptions tls(TlsConfig config) {
    return LimnerOptions.builder().tls(config).build();
  }

  @Test
  void tlsGenerateWithACAFile() {
    Env env = env();
    try (LimnerClient client =
        LimnerClient.connect(env.addr(), tls(TlsConfig.builder().caFile(env.ca()).build()))) {
      listModels(client);
      List<JobEvent> events = drain(client.generate(request("over TLS", 21)));
      assertEquals("completed", kind(events.get(events.size() - 1)));
      assertOneToN(sequences(events));
    }
  }

  @Test
  void tlsRefusesPlaintextAndUntrustingClients() {
    Env env = env();
    assertRefused(env.addr(), LimnerOptions.defaults(), "a plaintext client");
    // The system's CAs did not sign the test server's certificate.
    assertRefused(env.addr(), tls(TlsConfig.builder().build()), "no CA file");
    // The right CA, but a name the certificate does not carry.
    assertRefused(
        env.addr(),
        tls(TlsConfig.builder().caFile(env.ca()).serverName("limner.internal").build()),
        "another server name");
  }

  @Test
  void mtlsWithAClientCertificate() {
    Env env = env();
    TlsConfig config =
        TlsConfig.builder().caFile(env.ca()).clientCertificate(env.cert(), env.key()).build();
    try (LimnerClient client = LimnerClient.connect(env.mtlsAddr(), tls(config))) {
      listModels(client);
    }
  }

  @Test
  void mtlsRefusesAClientWithoutACertificate() {
    Env env = env();
    assertRefused(
        env.mtlsAddr(), tls(TlsConfig.builder().caFile(env.ca()).build()), "no client certificate");
  }

  @Test
  void tlsConfigErrors(@TempDir Path dir) throws Exception {
    Path missing = dir.resolve("missing.pem");
    Path notPem = dir.resolve("not.pem");
    Files.writeString(notPem, "hello\n");
    record Case(String name, LimnerOptions options, String want) {}
    List<Case> cases =
        List.of(
            new Case("missing CA file", tls(TlsConfig.builder().caFile(missing).build()), missing.toString()),
            new Case("CA file not PEM", tls(TlsConfig.builder().caFile(notPem).build()), "holds no PEM certificate"),
            new Case(
                "certificate without key",
                tls(TlsConfig.builder().clientCertificate(notPem, null).build()),
                "set both certFile and keyFile"),
            new Case(
                "bad key pair",
                tls(TlsConfig.builder().clientCertificate(notPem, notPem).build()),
                "TLS client certificate"),
            new Case(
                "TLS and channel credentials",
                LimnerOptions.builder()
                    .tls(TlsConfig.builder().build())
                    .channelCredentials(InsecureChannelCredentials.create())
                    .build(),
                "not both"));
    for (Case c : cases) {
      IllegalArgumentException error =
          assertThrows(
              IllegalArgumentException.class,
              () -> LimnerClient.connect("127.0.0.1:1", c.options()).close(),
              c.name());
      assertTrue(
          error.getMessage().contains(c.want()),
          c.name() + ": want an error containing " + c.want() + ", got " + error.getMessage());
    }
  }
}
