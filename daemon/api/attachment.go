package api

import (
	"errors"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/backend"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// progressEvery spaces the progress messages of a transfer.
const progressEvery = 200 * time.Millisecond

// attachStatus maps the errors of attachments, then the rest.
func attachStatus(err error) error {
	switch {
	case errors.Is(err, backend.ErrAttachmentCorrupt):
		return status.Error(codes.DataLoss, err.Error())
	case errors.Is(err, backend.ErrNoAttachment):
		return status.Error(codes.NotFound, err.Error())
	}
	return toStatus(err)
}

// progressSender sends a transfer's progress on stream, at most every
// progressEvery and always at the end of a file. Calls may come from
// another goroutine than the handler's; the handler's own Send comes
// after the last of them.
func progressSender(stream grpc.ServerStreamingServer[daemonv1.AttachmentProgress]) backend.Progress {
	var mu sync.Mutex
	var last time.Time
	return func(name string, done, total uint64) {
		mu.Lock()
		defer mu.Unlock()
		if done < total && time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		_ = stream.Send(&daemonv1.AttachmentProgress{Name: name, Done: done, Total: total})
	}
}

func (s *Server) SendAttachment(req *daemonv1.SendAttachmentRequest, stream grpc.ServerStreamingServer[daemonv1.AttachmentProgress]) error {
	ctx := stream.Context()
	wait, err := optionalDuration(req.GetWait())
	if err != nil {
		return err
	}
	if !filepath.IsAbs(req.GetPath()) {
		return status.Errorf(codes.InvalidArgument, "path %q is not absolute", req.GetPath())
	}
	r, err := s.b.SendAttachment(ctx, req.GetGroup(), req.GetPath(), req.GetCaption(), req.GetMediaType(),
		[]byte(req.GetClientMessageId()), progressSender(stream))
	if err != nil {
		return attachStatus(err)
	}
	resp, err := s.sendResponse(ctx, r, wait)
	if err != nil {
		return err
	}
	return stream.Send(&daemonv1.AttachmentProgress{Name: filepath.Base(req.GetPath()), Sent: resp})
}

func (s *Server) SaveAttachment(req *daemonv1.SaveAttachmentRequest, stream grpc.ServerStreamingServer[daemonv1.AttachmentProgress]) error {
	seq := req.GetSeq()
	if n := req.GetGroupSeq(); n > 0 {
		m, err := s.b.MessageByNumber(stream.Context(), req.GetGroup(), n)
		if err != nil {
			return attachStatus(err)
		}
		seq = m.Seq
	}
	files, err := s.b.SaveAttachments(stream.Context(), req.GetGroup(), seq, req.GetDir(), progressSender(stream))
	if err != nil {
		return attachStatus(err)
	}
	out := &daemonv1.AttachmentProgress{}
	for _, f := range files {
		out.Saved = append(out.Saved, &daemonv1.SavedFile{Path: f.Path, Name: f.Name, MediaType: f.MediaType, Size: f.Size})
	}
	return stream.Send(out)
}
