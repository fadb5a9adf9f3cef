package dev.limner.client;

import java.io.IOException;

/** A downloaded asset's bytes do not match its offsets, announced size or sha256 name. */
public final class AssetIntegrityException extends IOException {
  private static final long serialVersionUID = 1L;

  public AssetIntegrityException(String message) {
    super(message);
  }
}
