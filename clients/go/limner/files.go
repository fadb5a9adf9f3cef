package limner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	limnerv1 "github.com/limner-dev/limner/clients/go/gen/limner/v1"
)

// UploadImage uploads the image file at path (PNG, JPEG, WebP, ...). The server stores it
// content-addressed: uploading the same bytes twice returns the same asset with
// Created == false. The display name is the file's base name.
func (c *Client) UploadImage(ctx context.Context, path string) (*limnerv1.UploadImageResponse, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("limner: upload: %w", err)
	}
	return c.Images.UploadImage(ctx, &limnerv1.UploadImageRequest{
		Content:     content,
		DisplayName: filepath.Base(path),
	})
}

// DownloadAsset streams the asset name (e.g. "assets/<sha256>") into the file at path and
// returns the number of bytes written. It writes to path + ".part" first and renames it only
// after checking the chunk offsets, the size the server announced, and, for content-addressed
// names, the SHA-256; a failed download leaves no file at path.
func (c *Client) DownloadAsset(ctx context.Context, name, path string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Images.ReadAssetContent(ctx, &limnerv1.ReadAssetContentRequest{Name: name})
	if err != nil {
		return 0, err
	}
	partial := path + ".part"
	file, err := os.Create(partial)
	if err != nil {
		return 0, fmt.Errorf("limner: download %s: %w", name, err)
	}
	written, err := copyChunks(stream, file, name)
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(partial, path)
	}
	if err != nil {
		_ = os.Remove(partial)
		return 0, err
	}
	return written, nil
}

type chunkStream interface {
	Recv() (*limnerv1.ReadAssetContentResponse, error)
}

func copyChunks(stream chunkStream, out io.Writer, name string) (int64, error) {
	digest := sha256.New()
	var written int64
	expected := int64(-1)
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return written, err
		}
		if size := chunk.GetAsset().GetSizeBytes(); chunk.GetAsset() != nil && size > 0 {
			expected = size
		}
		if chunk.GetOffset() != written {
			return written, fmt.Errorf("limner: download %s: chunk at offset %d, expected %d", name, chunk.GetOffset(), written)
		}
		if _, err := out.Write(chunk.GetData()); err != nil {
			return written, fmt.Errorf("limner: download %s: %w", name, err)
		}
		digest.Write(chunk.GetData())
		written += int64(len(chunk.GetData()))
	}
	if expected >= 0 && written != expected {
		return written, fmt.Errorf("limner: download %s: got %d bytes, the asset has %d", name, written, expected)
	}
	if want, ok := strings.CutPrefix(name, "assets/"); ok && len(want) == sha256.Size*2 {
		if got := hex.EncodeToString(digest.Sum(nil)); got != want {
			return written, fmt.Errorf("limner: download %s: content has sha256 %s", name, got)
		}
	}
	return written, nil
}
