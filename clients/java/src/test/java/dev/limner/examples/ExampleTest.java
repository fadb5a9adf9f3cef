package dev.limner.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The example program itself, end to end against LIMNER_ADDR (and the mTLS server). */
@Timeout(60)
class ExampleTest {
  private static final byte[] PNG = {(byte) 0x89, 'P', 'N', 'G'};

  static String run(String... args) throws Exception {
    ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    try (PrintStream out = new PrintStream(buffer, true, StandardCharsets.UTF_8)) {
      GenerateImage.run(args, out);
    }
    return buffer.toString(StandardCharsets.UTF_8);
  }

  static void assertPng(Path path) throws Exception {
    byte[] data = Files.readAllBytes(path);
    assertArrayEquals(PNG, Arrays.copyOf(data, 4), "no PNG saved at " + path);
  }

  @Test
  void exampleGeneratesAndSavesAnImage(@TempDir Path dir) throws Exception {
    String addr = System.getenv("LIMNER_ADDR");
    assumeTrue(addr != null && !addr.isEmpty(), "LIMNER_ADDR is not set");
    Path path = dir.resolve("example.png");
    String text =
        run("--addr", addr, "--prompt", "an example", "--width", "64", "--height", "64",
            "--out", path.toString());
    for (String want : new String[] {"job jobs/", "generating [", "completed: assets/"}) {
      assertTrue(text.contains(want), "output lacks " + want + ":\n" + text);
    }
    assertPng(path);
  }

  @Test
  void exampleOverMutualTls(@TempDir Path dir) throws Exception {
    String addr = System.getenv("LIMNER_TEST_MTLS_ADDR");
    String ca = System.getenv("LIMNER_TEST_CA_CERT");
    String cert = System.getenv("LIMNER_TEST_CLIENT_CERT");
    String key = System.getenv("LIMNER_TEST_CLIENT_KEY");
    assumeTrue(
        addr != null && ca != null && cert != null && key != null,
        "LIMNER_TEST_MTLS_ADDR, LIMNER_TEST_CA_CERT, LIMNER_TEST_CLIENT_CERT and"
            + " LIMNER_TEST_CLIENT_KEY are not all set: .venv/bin/pytest tests/contract sets them");
    Path path = dir.resolve("example.png");
    String text =
        run("--addr", addr, "--ca-cert", ca, "--client-cert", cert, "--client-key", key,
            "--prompt", "over mTLS", "--width", "64", "--height", "64", "--out", path.toString());
    assertTrue(text.contains("completed: assets/"), "output lacks the result:\n" + text);
    assertPng(path);
  }
}
